//! The provider clients this server can build, by settings channel name.

use std::collections::HashMap;

use crate::notify::directory::Builder;

pub fn provider_builders() -> HashMap<&'static str, Builder> {
    HashMap::new()
}
