//! Mapping a log entry to the columns of its `events` row.
