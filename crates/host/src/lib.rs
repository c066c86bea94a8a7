//! Host adapters: everything the machine may not do itself (files, clocks, terminals, sockets).
