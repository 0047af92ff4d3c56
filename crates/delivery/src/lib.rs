//! Delivery (work in progress).

pub mod cause;
pub mod clock;
pub mod due;
pub mod route;
pub mod settings;
