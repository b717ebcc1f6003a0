//! Glue between the chat service and the rest of the node: offline pushes through
//! the notification pipeline, in-app notifications onto the sockets, and the
//! node's background chores (hub, presence refresh, gateway announcements).

pub mod live;
pub mod node;
pub mod push;
