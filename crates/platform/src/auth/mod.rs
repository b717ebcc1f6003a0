//! Authentication: password hashing, app credentials, signed user tokens and the
//! login throttle.

pub mod credentials;
pub mod password;
pub mod throttle;
pub mod token;

pub use credentials::{generate_app, verify_secret};
pub use password::PasswordHasher;
pub use throttle::{LoginThrottle, ThrottleConfig};
pub use token::{TokenClaims, TokenError};
