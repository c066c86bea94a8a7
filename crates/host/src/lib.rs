//! Host adapters: everything the machine may not do itself (files, clocks, terminals, sockets).

pub mod disk;
pub mod images;
pub mod live;
pub mod net;
pub mod terminal;
