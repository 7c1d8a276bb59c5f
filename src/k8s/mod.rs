//! What we read from Kubernetes: which Ingresses are ours, and their annotations.

pub mod annotations;
pub mod class;
pub mod grouping;
pub mod params;
