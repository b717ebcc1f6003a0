use std::sync::Arc;

use tidings_notify::Notifier;
use tidings_platform::accounts::Accounts;
use tidings_platform::config::Config;
use tidings_platform::page::PageLimits;

use crate::http::metrics::Metrics;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub accounts: Arc<Accounts>,
    pub notifier: Arc<Notifier>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn page_limits(&self) -> PageLimits {
        PageLimits {
            default: self.config.limits.page_default,
            max: self.config.limits.page_max,
        }
    }
}
