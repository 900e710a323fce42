//! oxka-log
