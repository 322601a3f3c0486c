//! Per-thread pools of idle read and write buffers: a connection (client or target) borrows
//! buffers while it has a request under way and gives them back when it goes idle, so idle
//! keep-alive connections hold no buffer and busy ones rarely allocate.

use bytes::BytesMut;
use std::cell::RefCell;

/// Room of a pooled read buffer (target connections).
const READ_BUFFER: usize = 8 * 1024;
/// Room of a pooled head buffer (client connections: most request heads are far smaller; one
/// that is not grows its buffer).
pub(crate) const HEAD_BUFFER: usize = 2 * 1024;
/// Room of a pooled write buffer.
const WRITE_BUFFER: usize = 4 * 1024;
/// Buffers of each kind kept per thread.
const POOL_SIZE: usize = 512;
/// Buffers that grew past this go back to the allocator rather than the pool.
const POOL_MAX_BUFFER: usize = 64 * 1024;

thread_local! {
    static READ_POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static HEAD_POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static WRITE_POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A read buffer from the pool (empty, with room).
pub(crate) fn take_read_buffer() -> BytesMut {
    READ_POOL
        .with_borrow_mut(|p| p.pop())
        .unwrap_or_else(|| BytesMut::with_capacity(READ_BUFFER))
}

/// Gives a read buffer back to the pool (its bytes are dropped).
pub(crate) fn put_read_buffer(mut b: BytesMut) {
    if b.capacity() == 0 || b.capacity() > POOL_MAX_BUFFER {
        return;
    }
    b.clear();
    READ_POOL.with_borrow_mut(|p| {
        if p.len() < POOL_SIZE {
            p.push(b);
        }
    });
}

/// A write buffer from the pool.
pub(crate) fn take_write_buffer() -> Vec<u8> {
    WRITE_POOL
        .with_borrow_mut(|p| p.pop())
        .unwrap_or_else(|| Vec::with_capacity(WRITE_BUFFER))
}

/// Gives a write buffer back to the pool.
pub(crate) fn put_write_buffer(mut b: Vec<u8>) {
    if b.capacity() == 0 || b.capacity() > POOL_MAX_BUFFER {
        return;
    }
    b.clear();
    WRITE_POOL.with_borrow_mut(|p| {
        if p.len() < POOL_SIZE {
            p.push(b);
        }
    });
}

/// A head buffer from the pool (empty, with room).
pub(crate) fn take_head_buffer() -> BytesMut {
    HEAD_POOL
        .with_borrow_mut(|p| p.pop())
        .unwrap_or_else(|| BytesMut::with_capacity(HEAD_BUFFER))
}

/// Gives a head buffer back to the pool (its bytes are dropped).
pub(crate) fn put_head_buffer(mut b: BytesMut) {
    if b.capacity() == 0 || b.capacity() > POOL_MAX_BUFFER {
        return;
    }
    b.clear();
    HEAD_POOL.with_borrow_mut(|p| {
        if p.len() < POOL_SIZE {
            p.push(b);
        }
    });
}
