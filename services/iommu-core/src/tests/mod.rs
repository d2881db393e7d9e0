//! Host tests of the driver core against the VT-d model.
