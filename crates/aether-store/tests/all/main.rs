//! Integration tests of the store through the `Store` trait object, as the
//! control plane uses it.

mod lifecycle;
