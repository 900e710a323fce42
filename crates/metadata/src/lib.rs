//! oxka-metadata
