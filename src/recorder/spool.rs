//! The spool: traces the database could not take yet, as JSON-lines segment files in
//! `<data_dir>/spool/`. Each append writes a whole new segment through a temporary file and a
//! rename, so a crash mid-write leaves either a complete segment or none; replay deletes a
//! segment only after the database has committed it (and inserts are idempotent, so replaying
//! a segment twice is harmless).

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
}

impl Spool {
    pub fn new(dir: PathBuf) -> Self {
        let pending = std::fs::read_dir(&dir)
            .map(|mut d| d.any(|e| e.is_ok_and(|e| is_segment(&e.path()))))
            .unwrap_or(false);
        Spool {
            dir,
            seq: AtomicU64::new(0),
            pending: AtomicBool::new(pending),
            lock: Mutex::new(()),
        }
    }

    pub fn append(&self, records: &[TraceRecord]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
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
        {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            for r in records {
                serde_json::to_writer(&mut f, r)?;
                f.write_all(b"\n")?;
            }
            let f = f.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(name))?;
        self.pending.store(true, Ordering::Release);
        Ok(())
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
        let _ = std::fs::remove_file(segment);
    }

    /// Renames an unreadable segment out of the way (kept for an operator to look at).
    pub fn set_aside(&self, segment: &Path) {
        let _ = std::fs::rename(segment, segment.with_extension("bad"));
    }

    /// Bytes currently spooled.
    pub fn bytes(&self) -> u64 {
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
