//! Dotted version vector sets (stub: being written).
