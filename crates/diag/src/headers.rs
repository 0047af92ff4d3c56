//! Header analysis (`postern headers analyze`).
