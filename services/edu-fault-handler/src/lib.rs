//! The edu fault handler's decisions, kept apart from its system calls so
//! the host can test them: [`pages`], its page group policy and its record
//! of the pages it made present.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod pages;
