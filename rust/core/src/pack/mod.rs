//! Packing of tokenized documents into fixed-length rows.

pub mod bfd;
