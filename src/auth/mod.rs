//! Who is calling the admin app: the session of a signed-in member and the guard that every admin
//! request and server function passes. What a caller may do is decided once, in
//! [`crate::service::access`]; this module only finds out who the caller is.

pub mod client;
pub mod guard;
pub mod session;
