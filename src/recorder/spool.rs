//! The spool: traces on their way to the database, as JSON-lines segment files in
//! `<data_dir>/spool/`. Every batch is written here first (write-ahead, so a crash loses only
//! what was still being finalized) and removed once the database has committed it; what the
//! database cannot take stays until it can. Each append writes a whole new segment through a
//! temporary file, fsync and a rename, so a crash mid-write leaves either a complete segment or
//! none; inserts are idempotent, so replaying a segment twice is harmless.
//!
//! The spool is capped: past `max_bytes` traces are spooled without their bodies (usage and
//! cost are never dropped), and `full` says so to the health check.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::store::traces::TraceRecord;

pub struct Spool {
    dir: PathBuf,
    seq: AtomicU64,
    pending: AtomicBool,
    lock: Mutex<()>,
    /// Bytes in complete segments (kept as segments come and go).
    bytes: AtomicU64,
    max_bytes: u64,
}

impl Spool {
    pub fn new(dir: PathBuf) -> Self {
        Self::with_cap(dir, u64::MAX)
    }

    pub fn with_cap(dir: PathBuf, max_bytes: u64) -> Self {
        let mut s = Spool {
            dir,
            seq: AtomicU64::new(0),
            pending: AtomicBool::new(false),
            lock: Mutex::new(()),
            bytes: AtomicU64::new(0),
            max_bytes,
        };
        let on_disk = s.scan_bytes();
        s.bytes = AtomicU64::new(on_disk);
        s.pending = AtomicBool::new(!s.segments().is_empty());
        s
    }

    /// Whether the spool has reached its cap (traces are then spooled without their bodies).
    pub fn full(&self) -> bool {
        self.bytes.load(Ordering::Relaxed) >= self.max_bytes
    }

    /// Appends a segment; returns its path (to remove once the database has the records).
    pub fn append(&self, records: &[TraceRecord]) -> std::io::Result<PathBuf> {
        if records.is_empty() {
            return Ok(PathBuf::new());
        }
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::create_dir_all(&self.dir)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{now:020}-{}-{seq:06}.jsonl", std::process::id());
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let written = {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            for r in records {
                serde_json::to_writer(&mut f, r)?;
                f.write_all(b"\n")?;
            }
            let f = f.into_inner().map_err(|e| e.into_error())?;
            f.sync_data()?;
            f.metadata()?.len()
        };
        let path = self.dir.join(name);
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.bytes.fetch_add(written, Ordering::Relaxed);
        self.pending.store(true, Ordering::Release);
        Ok(path)
    }

    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Complete segments, oldest first.
    pub fn segments(&self) -> Vec<PathBuf> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| is_segment(p))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        if v.is_empty() {
            self.pending.store(false, Ordering::Release);
        }
        v
    }

    pub fn read(&self, segment: &Path) -> std::io::Result<Vec<TraceRecord>> {
        let text = std::fs::read_to_string(segment)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
            .collect()
    }

    pub fn remove(&self, segment: &Path) {
        let len = std::fs::metadata(segment).map(|m| m.len()).unwrap_or(0);
        if std::fs::remove_file(segment).is_ok() {
            self.forget(len);
        }
    }

    fn forget(&self, len: u64) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(len))
            });
    }

    /// Renames an unreadable segment out of the way (kept for an operator to look at).
    pub fn set_aside(&self, segment: &Path) {
        let len = std::fs::metadata(segment).map(|m| m.len()).unwrap_or(0);
        if std::fs::rename(segment, segment.with_extension("bad")).is_ok() {
            self.forget(len);
        }
    }

    /// Bytes currently spooled.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn scan_bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| is_segment(&e.path()))
                    .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                    .sum()
            })
            .unwrap_or(0)
    }
}

fn is_segment(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "jsonl")
        && !p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
}
