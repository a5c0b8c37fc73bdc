//! Local storage (stub: being written).
