//! The Worker's clock: `Date.now()` (std's clock panics on Workers).

use pocaduck_edge_read::Clock;

/// `Date.now()`, which the runtime advances at each IO.
pub(crate) struct DateClock;

impl Clock for DateClock {
    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }

    fn unix_seconds(&self) -> u64 {
        (js_sys::Date::now() / 1000.0) as u64
    }
}
