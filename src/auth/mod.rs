//! Who is calling and what they may do: members' passwords, sessions, roles, the first-run setup
//! token, throttling of failed sign-ins and the cross-origin check.
//!
//! Every server function and admin route passes through [`guard`]: server functions by their
//! endpoint's prefix (`public/`, `account/`, `read/`, `edit/`, `admin/`), checked in one middleware
//! before the function runs, and again by [`guard::authorize`] when a page calls the function
//! in-process during server-side rendering.

pub mod guard;
pub mod password;
pub mod session;
pub mod throttle;
pub mod tokens;
