//! Glue between the feed service and the rest of the node.

pub mod live;
