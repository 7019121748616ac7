//! confidence (to be written).
