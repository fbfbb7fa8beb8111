//! Models over the lake: a classifier trained on a dataset's records to
//! predict a condition on one column from chosen features, measured on a
//! held-out part against the majority-class baseline, saved with its
//! feature encoding and used for predictions.

pub mod encoding;
pub mod jobs;
pub mod model;
pub mod store;
