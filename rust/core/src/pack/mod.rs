//! Packing of tokenized documents into fixed-length rows, and the tokenization with
//! response-only labels that feeds it.

pub mod bfd;
pub mod check;
pub mod gather;
pub mod mask;
pub mod spill;
