//! The Overview of an endpoint: the last [`WINDOW_DAYS`] days (today included, whole UTC days),
//! their totals, one entry per day, and breakdowns by model, virtual key and auth mode. All of it
//! comes from the daily totals kept with the traces, so it costs the same on a million traces as
//! on ten. One definition of the window for every adapter (the portal's Overview and endpoint
//! list, the CLI, the REST API).

use crate::domain::{DAY_MS, EndpointId, Millis, day_start};
use crate::store::observe::{Breakdown, Dimension};
use crate::store::traces::DailyTotals;
use crate::store::{Result, Store};

/// How many days the Overview covers.
pub const WINDOW_DAYS: i64 = 30;

/// Midnight UTC of the first day of the window that ends today.
pub fn window_start(now: Millis) -> Millis {
    day_start(now) - (WINDOW_DAYS - 1) * DAY_MS
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    /// The window's first day.
    pub since: Millis,
    pub totals: DailyTotals,
    /// Every day of the window, in order, days without traffic included (all zero).
    pub days: Vec<(Millis, DailyTotals)>,
    pub by_model: Vec<Breakdown>,
    pub by_key: Vec<Breakdown>,
    pub by_auth: Vec<Breakdown>,
}

pub async fn overview(store: &Store, endpoint: EndpointId, now: Millis) -> Result<Overview> {
    let since = window_start(now);
    let (totals, days) = by_day(&store.daily_totals(endpoint, since).await?, since);
    Ok(Overview {
        since,
        totals,
        days,
        by_model: store.breakdown(endpoint, since, Dimension::Model).await?,
        by_key: store.breakdown(endpoint, since, Dimension::Key).await?,
        by_auth: store
            .breakdown(endpoint, since, Dimension::AuthMode)
            .await?,
    })
}

/// Spreads daily rows over the window's days, and sums them.
pub fn by_day(
    rows: &[(Millis, DailyTotals)],
    since: Millis,
) -> (DailyTotals, Vec<(Millis, DailyTotals)>) {
    let mut total = DailyTotals::default();
    let mut days: Vec<(Millis, DailyTotals)> = (0..WINDOW_DAYS)
        .map(|i| (since + i * DAY_MS, DailyTotals::default()))
        .collect();
    for (day, t) in rows {
        total.merge(t);
        let i = (day_start(*day) - since).div_euclid(DAY_MS);
        if let Some((_, d)) = usize::try_from(i).ok().and_then(|i| days.get_mut(i)) {
            d.merge(t);
        }
    }
    (total, days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_thirty_whole_days_ending_today() {
        let now = 100 * DAY_MS + 5 * 3_600_000;
        assert_eq!(window_start(now), 71 * DAY_MS);
        let t = |n| DailyTotals {
            requests: n,
            ..Default::default()
        };
        let (total, days) = by_day(
            &[
                (71 * DAY_MS, t(1)),
                (100 * DAY_MS, t(2)),
                (50 * DAY_MS, t(4)),
            ],
            window_start(now),
        );
        assert_eq!(days.len(), 30);
        assert_eq!(days[0], (71 * DAY_MS, t(1)));
        assert_eq!(days[29], (100 * DAY_MS, t(2)));
        // A row outside the window counts in the total only (the store never returns one).
        assert_eq!(total.requests, 7);
    }
}
