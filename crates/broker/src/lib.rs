//! oxka-broker
