//! The sessiond domain: what a session, a token and a policy are, and the rules that
//! decide between them. Nothing here performs I/O; time comes from a [`Clock`] so the
//! rules can be tested at any instant without sleeping.

pub mod clock;
pub mod code;
pub mod email;
pub mod error;
pub mod event;
pub mod fields;
pub mod ids;
pub mod jwt;
pub mod otp;
pub mod password;
pub mod password_policy;
pub mod policy;
pub mod refresh;
pub mod revocation;
pub mod secret;
pub mod session;
pub mod user;

pub use clock::{Clock, ManualClock, SystemClock};
pub use code::Code;
pub use email::Email;
pub use error::DomainError;
pub use event::{EventType, Initiator};
pub use ids::{RefreshTokenId, SessionId, UserId};
pub use policy::{OnLimit, SessionPolicy};
pub use secret::{RefreshToken, TokenHash};
pub use session::{AuthMethod, Device, RevokeReason, Session};
pub use user::User;
