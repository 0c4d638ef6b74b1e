//! The gateway's own iceoryx2 service variant, [`GatewayIpc`]: iceoryx2's `ipc::Service` with two
//! parts swapped through iceoryx2's traits (no iceoryx2 code copied or forked).
//!
//! Not all of that surface is promised: `service::internal::ServiceInternal` and
//! `iceoryx2::testing::remove_global_mgmt_segment` are public but `#[doc(hidden)]`, and that
//! `try_send` returning `Ok(Some(_))` means "one sample evicted" is how 0.10.0 behaves, not what
//! its trait documents. The exact `=0.10.0` pins and the unit tests that count evictions and check
//! the node counter's removal (`src/gateway/tests.rs`) are the gate for any iceoryx2 upgrade.
//!
//! - **No allocation per loan.** In iceoryx2 0.10 every loan wraps its chunk in a handle made
//!   by the service's `ArcThreadSafetyPolicy` (`ChunkMutSharedState::new` in
//!   `iceoryx2/src/port/details/chunk_mut_shared_state.rs`, called by `SampleMutUninit::new`),
//!   which for `ipc::Service` is an `Rc::new`: one heap allocation per message. [`Pooled`] is the
//!   same single-threaded reference count over blocks recycled through a free list of the
//!   thread: after warm-up a loan takes a block the previous sample gave back.
//! - **Drops counted under safe overflow.** With `publish_overflow = "drop_oldest"` a full
//!   subscriber queue evicts its oldest sample inside the connection's `try_send`, which returns
//!   it to the sender (`iceoryx2/src/port/details/sender.rs`, `deliver_offset_to_connection_impl`:
//!   `Ok(overflow)` then `release_chunk(old)`), and iceoryx2 tells the publisher nothing. The
//!   [`Connection`] here is iceoryx2's shared-memory connection unchanged, whose sender counts
//!   each eviction on its thread ([`take_evictions`]): one per sample a subscriber lost.
//!
//! Every shared-memory structure, file name and layout is iceoryx2's `ipc::Service`'s, so a
//! strategy on `ipc::Service` or `ipc_threadsafe::Service` (Python) talks to the gateway as before;
//! the difference lives in the gateway's process only. Like `ipc::Service`'s, its ports are not
//! `Send`: they live on the IO thread.

use core::fmt::Debug;
use core::ptr::NonNull;
use std::alloc::Layout;
use std::cell::{Cell, RefCell};
use std::ops::Deref;
use std::time::Duration;

use iceoryx2::prelude::FileName;
use iceoryx2_bb_elementary_traits::testing::abandonable::Abandonable;
use iceoryx2_bb_elementary_traits::zero_copy_send::ZeroCopySend;
use iceoryx2_cal::arc_sync_policy::{ArcSyncPolicy, ArcSyncPolicyCreationError, LockGuard};
use iceoryx2_cal::named_concept::{
    NamedConcept, NamedConceptBuilder, NamedConceptDoesExistError, NamedConceptListError,
    NamedConceptMgmt, NamedConceptPathHintRemoveError, NamedConceptRemoveError,
};
use iceoryx2_cal::shm_allocator::bump_allocator::BumpAllocator;
use iceoryx2_cal::shm_allocator::pool_allocator::PoolAllocator;
use iceoryx2_cal::shm_allocator::PointerOffset;
use iceoryx2_cal::zero_copy_connection::{
    BackpressureToReceiverAction, BackpressureToReceiverFn, ChannelId, ChannelState,
    ZeroCopyConnection, ZeroCopyConnectionBuilder, ZeroCopyCreationError, ZeroCopyPortDetails,
    ZeroCopyPortRemoveError, ZeroCopyReclaimError, ZeroCopySendError, ZeroCopySender,
};
use iceoryx2_cal::{
    bag, dynamic_storage, event, hash, monitoring, reactor, resizable_shared_memory, serialize,
    shared_memory, static_storage, zero_copy_connection,
};

/// iceoryx2's `ipc::Service` with a recycling reference count ([`Pooled`]) and a connection
/// that counts the samples safe overflow evicts ([`Connection`]).
#[derive(Debug, Clone)]
pub struct GatewayIpc {}

impl iceoryx2::service::Service for GatewayIpc {
    type StaticStorage = static_storage::recommended::Ipc;
    type ConfigSerializer = serialize::recommended::Recommended;
    type PersistentDynamicStorage<T: Debug + Send + Sync + ZeroCopySend + 'static> =
        dynamic_storage::recommended::PersistentIpc<T>;
    type Bag = bag::recommended::Recommended;
    type DynamicStorage<T: Debug + Send + Sync + ZeroCopySend + 'static> =
        dynamic_storage::recommended::Ipc<T>;
    type ServiceNameHasher = hash::recommended::Recommended;
    type SharedMemory = shared_memory::recommended::Ipc<PoolAllocator>;
    type ResizableSharedMemory = resizable_shared_memory::recommended::Ipc<PoolAllocator>;
    type Connection = Connection;
    type Event = event::recommended::Ipc;
    type Monitoring = monitoring::recommended::Ipc;
    type Reactor = reactor::recommended::Ipc;
    type ArcThreadSafetyPolicy<T: Send + Debug + Abandonable> = Pooled<T>;
    type BlackboardMgmt<KeyType: Send + Sync + Debug + ZeroCopySend + 'static> =
        dynamic_storage::recommended::Ipc<KeyType>;
    type BlackboardPayload = shared_memory::recommended::Ipc<BumpAllocator>;
    type UniqueId = iceoryx2::unique_id_generator::unique_system_id::UniqueSystemId;
}

impl iceoryx2::service::internal::ServiceInternal<GatewayIpc> for GatewayIpc {}

// ---------------------------------------------------------------------------------------------
// Pooled: a single-threaded reference count over recycled blocks.

/// A block: the count, then the value. Never smaller than a pointer, so a free block holds the
/// free list's link in its first word.
#[repr(C)]
struct Block<T> {
    count: Cell<usize>,
    value: T,
}

/// The free blocks of one layout: an intrusive singly linked list.
struct FreeList {
    layout: Layout,
    head: *mut u8,
}

/// The thread's free lists, one per block layout seen (a handful: iceoryx2 wraps a few types).
/// Blocks go back to the allocator when the thread ends.
struct Pool(RefCell<Vec<FreeList>>);

impl Drop for Pool {
    fn drop(&mut self) {
        for list in self.0.get_mut().drain(..) {
            let mut p = list.head;
            while !p.is_null() {
                // SAFETY: every block on the list was allocated with `list.layout` and holds the
                // next link in its first word (`give_back`).
                unsafe {
                    let next = p.cast::<*mut u8>().read();
                    std::alloc::dealloc(p, list.layout);
                    p = next;
                }
            }
        }
    }
}

thread_local! {
    static POOL: Pool = const { Pool(RefCell::new(Vec::new())) };
}

/// A block of `layout` from the thread's free list, or from the allocator.
fn take(layout: Layout) -> *mut u8 {
    let recycled = POOL
        .try_with(|pool| {
            let mut lists = pool.0.borrow_mut();
            let list = lists.iter_mut().find(|l| l.layout == layout)?;
            let p = list.head;
            if p.is_null() {
                return None;
            }
            // SAFETY: a free block holds the next link in its first word.
            list.head = unsafe { p.cast::<*mut u8>().read() };
            Some(p)
        })
        .ok()
        .flatten();
    // SAFETY: `layout` has a non-zero size (a block holds at least its count).
    recycled.unwrap_or_else(|| unsafe { std::alloc::alloc(layout) })
}

/// Puts a block (its value already dropped) on the thread's free list.
///
/// # Safety
/// `p` was allocated with `layout`, which is at least pointer-sized and -aligned, and is not
/// used after this call.
unsafe fn give_back(p: *mut u8, layout: Layout) {
    let kept = POOL
        .try_with(|pool| {
            let mut lists = pool.0.borrow_mut();
            let i = match lists.iter().position(|l| l.layout == layout) {
                Some(i) => i,
                None => {
                    lists.push(FreeList {
                        layout,
                        head: std::ptr::null_mut(),
                    });
                    lists.len() - 1
                }
            };
            // SAFETY: the block is ours, large and aligned enough for a pointer.
            unsafe { p.cast::<*mut u8>().write(lists[i].head) };
            lists[i].head = p;
        })
        .is_ok();
    if !kept {
        // The thread is ending: its pool is gone.
        // SAFETY: allocated with `layout`.
        unsafe { std::alloc::dealloc(p, layout) };
    }
}

/// A single-threaded shared reference (what `Rc` is to iceoryx2's `SingleThreaded` policy) whose
/// blocks are recycled through a free list of the thread instead of returned to the allocator:
/// iceoryx2 makes one per loan, so a steady publisher reuses the same few blocks and allocates
/// nothing. Not `Send`, as `Rc` is not.
pub struct Pooled<T: Send + Debug + Abandonable> {
    block: NonNull<Block<T>>,
}

impl<T: Send + Debug + Abandonable> Pooled<T> {
    fn block(&self) -> &Block<T> {
        // SAFETY: the block lives while any handle does (the count).
        unsafe { self.block.as_ref() }
    }
}

impl<T: Send + Debug + Abandonable> Debug for Pooled<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pooled")
            .field("data", &self.block().value)
            .finish()
    }
}

impl<T: Send + Debug + Abandonable> Clone for Pooled<T> {
    fn clone(&self) -> Self {
        let count = &self.block().count;
        count.set(count.get() + 1);
        Pooled { block: self.block }
    }
}

impl<T: Send + Debug + Abandonable> Drop for Pooled<T> {
    fn drop(&mut self) {
        let count = &self.block().count;
        let left = count.get() - 1;
        count.set(left);
        if left == 0 {
            let p = self.block.as_ptr();
            // SAFETY: the last handle: drop the value in place (it may drop other handles, so
            // the pool is not borrowed meanwhile), then recycle the memory.
            unsafe {
                std::ptr::drop_in_place(std::ptr::addr_of_mut!((*p).value));
                give_back(p.cast(), Layout::new::<Block<T>>());
            }
        }
    }
}

impl<T: Send + Debug + Abandonable> Abandonable for Pooled<T> {
    unsafe fn abandon_in_place(this: NonNull<Self>) {
        // SAFETY: `this` is a valid handle, not used after this call (the trait's contract).
        unsafe {
            let block = this.as_ref().block.as_ptr();
            if (*block).count.get() == 1 {
                // The only handle: abandon the value, leave the block (as `SingleThreaded`
                // leaves its `Rc`).
                T::abandon_in_place(NonNull::new_unchecked(std::ptr::addr_of_mut!(
                    (*block).value
                )));
            } else {
                std::ptr::drop_in_place(this.as_ptr());
            }
        }
    }
}

/// The guard of [`Pooled::lock`]: the value, borrowed (single-threaded: nothing to lock).
#[derive(Debug)]
pub struct PooledGuard<'parent, T>(&'parent T);

impl<T> Deref for PooledGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0
    }
}

impl<'parent, T: Send + Debug + Abandonable> LockGuard<'parent, T> for PooledGuard<'parent, T> {}

impl<T: Send + Debug + Abandonable> ArcSyncPolicy<T> for Pooled<T> {
    type LockGuard<'parent>
        = PooledGuard<'parent, T>
    where
        Self: 'parent,
        T: 'parent;

    fn new(value: T) -> Result<Self, ArcSyncPolicyCreationError> {
        let layout = Layout::new::<Block<T>>();
        let p = take(layout).cast::<Block<T>>();
        let Some(block) = NonNull::new(p) else {
            return Err(ArcSyncPolicyCreationError::InsufficientResources);
        };
        // SAFETY: a fresh or recycled block of `Block<T>`'s layout, not in use.
        unsafe {
            block.as_ptr().write(Block {
                count: Cell::new(1),
                value,
            })
        };
        Ok(Pooled { block })
    }

    fn lock(&self) -> PooledGuard<'_, T> {
        PooledGuard(&self.block().value)
    }
}

const _: () = assert!(std::mem::size_of::<Block<()>>() >= std::mem::size_of::<*mut u8>());
const _: () = assert!(std::mem::align_of::<Block<()>>() >= std::mem::align_of::<*mut u8>());

// ---------------------------------------------------------------------------------------------
// Connection: iceoryx2's shared-memory connection, with evictions counted on the sender.

type Inner = zero_copy_connection::recommended::Ipc;
type InnerSender = <Inner as ZeroCopyConnection>::Sender;
type InnerBuilder = <Inner as ZeroCopyConnection>::Builder;

thread_local! {
    static EVICTED: Cell<u64> = const { Cell::new(0) };
}

/// Samples evicted from full subscriber queues by this thread's senders since the last call
/// (safe overflow: each is a sample a subscriber lost), and resets the count.
pub fn take_evictions() -> u64 {
    EVICTED.with(|e| e.replace(0))
}

fn count_eviction(r: &Result<Option<PointerOffset>, ZeroCopySendError>) {
    if let Ok(Some(_)) = r {
        EVICTED.with(|e| e.set(e.get() + 1));
    }
}

/// iceoryx2's shared-memory zero-copy connection (`zero_copy_connection::recommended::Ipc`),
/// same files and layout, whose [`Sender`] counts evictions.
#[derive(Debug)]
pub struct Connection;

/// The sending end of a [`Connection`]: iceoryx2's, counting each sample that safe overflow
/// evicts from the receiver's queue ([`take_evictions`]).
#[derive(Debug)]
#[repr(transparent)]
pub struct Sender(InnerSender);

/// Builds [`Connection`] ports: iceoryx2's builder.
#[derive(Debug)]
pub struct Builder(InnerBuilder);

impl NamedConceptMgmt for Connection {
    type Configuration = <Inner as NamedConceptMgmt>::Configuration;

    unsafe fn remove_cfg(
        name: &FileName,
        cfg: &Self::Configuration,
    ) -> Result<bool, NamedConceptRemoveError> {
        // SAFETY: the caller's contract, passed on.
        unsafe { Inner::remove_cfg(name, cfg) }
    }

    fn does_exist_cfg(
        name: &FileName,
        cfg: &Self::Configuration,
    ) -> Result<bool, NamedConceptDoesExistError> {
        Inner::does_exist_cfg(name, cfg)
    }

    fn list_cfg(cfg: &Self::Configuration) -> Result<Vec<FileName>, NamedConceptListError> {
        Inner::list_cfg(cfg)
    }

    fn default_prefix() -> FileName {
        Inner::default_prefix()
    }

    fn default_path_hint() -> iceoryx2::prelude::Path {
        Inner::default_path_hint()
    }

    fn remove_path_hint(
        value: &iceoryx2::prelude::Path,
    ) -> Result<(), NamedConceptPathHintRemoveError> {
        Inner::remove_path_hint(value)
    }
}

impl ZeroCopyConnection for Connection {
    type Sender = Sender;
    type Receiver = <Inner as ZeroCopyConnection>::Receiver;
    type Builder = Builder;

    unsafe fn remove_sender(
        name: &FileName,
        config: &Self::Configuration,
    ) -> Result<(), ZeroCopyPortRemoveError> {
        // SAFETY: the caller's contract, passed on.
        unsafe { Inner::remove_sender(name, config) }
    }

    unsafe fn remove_receiver(
        name: &FileName,
        config: &Self::Configuration,
    ) -> Result<(), ZeroCopyPortRemoveError> {
        // SAFETY: the caller's contract, passed on.
        unsafe { Inner::remove_receiver(name, config) }
    }

    fn does_support_safe_overflow() -> bool {
        Inner::does_support_safe_overflow()
    }

    fn has_configurable_buffer_size() -> bool {
        Inner::has_configurable_buffer_size()
    }

    fn default_suffix() -> FileName {
        Inner::default_suffix()
    }
}

impl NamedConceptBuilder<Connection> for Builder {
    fn new(name: &FileName) -> Self {
        Builder(<InnerBuilder as NamedConceptBuilder<Inner>>::new(name))
    }

    fn config(self, config: &<Connection as NamedConceptMgmt>::Configuration) -> Self {
        Builder(<InnerBuilder as NamedConceptBuilder<Inner>>::config(
            self.0, config,
        ))
    }
}

impl ZeroCopyConnectionBuilder<Connection> for Builder {
    fn buffer_size(self, value: usize) -> Self {
        Builder(self.0.buffer_size(value))
    }

    fn enable_safe_overflow(self, value: bool) -> Self {
        Builder(self.0.enable_safe_overflow(value))
    }

    fn receiver_max_borrowed_chunks_per_channel(self, value: usize) -> Self {
        Builder(self.0.receiver_max_borrowed_chunks_per_channel(value))
    }

    fn max_supported_shared_memory_segments(self, value: u8) -> Self {
        Builder(self.0.max_supported_shared_memory_segments(value))
    }

    fn number_of_chunks_per_segment(self, value: usize) -> Self {
        Builder(self.0.number_of_chunks_per_segment(value))
    }

    fn number_of_channels(self, value: usize) -> Self {
        Builder(self.0.number_of_channels(value))
    }

    fn initial_channel_state(self, value: ChannelState) -> Self {
        Builder(self.0.initial_channel_state(value))
    }

    fn timeout(self, value: Duration) -> Self {
        Builder(self.0.timeout(value))
    }

    fn create_sender(self) -> Result<Sender, ZeroCopyCreationError> {
        self.0.create_sender().map(Sender)
    }

    fn create_receiver(
        self,
    ) -> Result<<Connection as ZeroCopyConnection>::Receiver, ZeroCopyCreationError> {
        self.0.create_receiver()
    }
}

impl NamedConcept for Sender {
    fn name(&self) -> &FileName {
        self.0.name()
    }
}

impl Abandonable for Sender {
    unsafe fn abandon_in_place(this: NonNull<Self>) {
        // SAFETY: `Sender` is a transparent wrapper; the caller's contract, passed on.
        unsafe { InnerSender::abandon_in_place(this.cast::<InnerSender>()) }
    }
}

impl ZeroCopyPortDetails for Sender {
    fn number_of_channels(&self) -> usize {
        self.0.number_of_channels()
    }

    fn buffer_size(&self) -> usize {
        self.0.buffer_size()
    }

    fn has_enabled_safe_overflow(&self) -> bool {
        self.0.has_enabled_safe_overflow()
    }

    fn max_borrowed_chunks(&self) -> usize {
        self.0.max_borrowed_chunks()
    }

    fn max_supported_shared_memory_segments(&self) -> u8 {
        self.0.max_supported_shared_memory_segments()
    }

    fn is_connected(&self) -> bool {
        self.0.is_connected()
    }

    fn __internal_get_channel_state(
        &self,
        channel_id: ChannelId,
    ) -> &iceoryx2_bb_concurrency::atomic::AtomicU64 {
        self.0.__internal_get_channel_state(channel_id)
    }

    fn set_channel_state(&self, channel_id: ChannelId, state: ChannelState) -> bool {
        self.0.set_channel_state(channel_id, state)
    }

    fn set_disconnect_hint(&self, channel_id: ChannelId, expected_state: ChannelState) {
        self.0.set_disconnect_hint(channel_id, expected_state)
    }

    fn has_disconnect_hint(&self, channel_id: ChannelId, expected_state: ChannelState) -> bool {
        self.0.has_disconnect_hint(channel_id, expected_state)
    }

    fn has_channel_state(&self, channel_id: ChannelId, expected_state: ChannelState) -> bool {
        self.0.has_channel_state(channel_id, expected_state)
    }

    fn is_channel_closed(&self, channel_id: ChannelId) -> bool {
        self.0.is_channel_closed(channel_id)
    }

    fn close_channel(&self, channel_id: ChannelId, expected_state: ChannelState) {
        self.0.close_channel(channel_id, expected_state)
    }
}

impl ZeroCopySender for Sender {
    fn try_send(
        &self,
        ptr: PointerOffset,
        sample_size: usize,
        channel_id: ChannelId,
    ) -> Result<Option<PointerOffset>, ZeroCopySendError> {
        let r = self.0.try_send(ptr, sample_size, channel_id);
        count_eviction(&r);
        r
    }

    fn blocking_send<F: BackpressureToReceiverFn>(
        &self,
        ptr: PointerOffset,
        sample_size: usize,
        channel_id: ChannelId,
        backpressure_to_receiver_handler: F,
        backpressure_action_for_strategy: BackpressureToReceiverAction,
    ) -> Result<Option<PointerOffset>, ZeroCopySendError> {
        let r = self.0.blocking_send(
            ptr,
            sample_size,
            channel_id,
            backpressure_to_receiver_handler,
            backpressure_action_for_strategy,
        );
        count_eviction(&r);
        r
    }

    fn reclaim(
        &self,
        channel_id: ChannelId,
    ) -> Result<Option<PointerOffset>, ZeroCopyReclaimError> {
        self.0.reclaim(channel_id)
    }

    unsafe fn acquire_used_offsets<F: FnMut(PointerOffset)>(&self, callback: F) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.0.acquire_used_offsets(callback) }
    }
}

// ---------------------------------------------------------------------------------------------
// The per-prefix node counter in /dev/shm.

/// A gateway's iceoryx2 node. When it goes, and no other node of the prefix is alive (another
/// gateway of the appliance, a strategy), it removes iceoryx2's per-prefix node counter from
/// `/dev/shm` ([`remove_node_counter_if_alone`]), so a clean stop leaves nothing there.
pub(super) struct GatewayNode {
    node: Option<iceoryx2::node::Node<GatewayIpc>>,
    config: iceoryx2::config::Config,
}

impl GatewayNode {
    pub(super) fn new(
        node: iceoryx2::node::Node<GatewayIpc>,
        config: &iceoryx2::config::Config,
    ) -> Self {
        GatewayNode {
            node: Some(node),
            config: config.clone(),
        }
    }

    pub(super) fn get(&self) -> &iceoryx2::node::Node<GatewayIpc> {
        // Only `drop` takes it.
        self.node.as_ref().expect("the node lives until drop")
    }
}

impl Drop for GatewayNode {
    fn drop(&mut self) {
        drop(self.node.take());
        remove_node_counter_if_alone(&self.config);
    }
}

/// Removes iceoryx2's per-prefix node counter from `/dev/shm` when no node of the prefix is
/// alive; returns whether it removed it.
///
/// iceoryx2 creates that segment (`GlobalManagementSegment::open_or_create`, called for every
/// new node by `UniqueSystemId`'s generator, `iceoryx2/src/unique_id_generator/unique_system_id.rs`)
/// with `has_ownership(false)`, so no drop ever removes it, and recreates it whenever a node is
/// created after it was removed: its counter is one part of a node id, next to the process id and
/// the creation time in nanoseconds (`UniqueSystemId::from_counter`), so a fresh counter never
/// makes two ids equal. It is removed only when every node of the prefix listed is dead (none alive,
/// none of another user, none half-built): a running strategy keeps it, and one starting right now
/// already holds its id.
pub fn remove_node_counter_if_alone(config: &iceoryx2::config::Config) -> bool {
    use iceoryx2::node::{Node, NodeState};
    use iceoryx2::prelude::CallbackProgression;
    let mut others = 0usize;
    let listed = Node::<GatewayIpc>::list(config, |state| {
        if !matches!(state, NodeState::Dead(_)) {
            others += 1;
        }
        CallbackProgression::Continue
    });
    if listed.is_err() || others > 0 {
        return false;
    }
    // iceoryx2's own removal, so the name (prefix, a hash of the segment's type name, the
    // version, `global_mgmt_suffix`) is computed where it is defined. It is public but hidden
    // from iceoryx2's docs (`iceoryx2/src/testing.rs`); the version is pinned exactly and
    // `the_last_node_of_the_prefix_takes_the_node_counter_out_of_dev_shm` checks it.
    // SAFETY: no node of the prefix is alive to use the segment (checked above); one created
    // from now on creates it again. The check and the removal are not atomic: a node whose
    // process is taking its id right now, not yet listed, can see the counter start again. That
    // is harmless by iceoryx2's construction: the segment is only opened for the moment an id is
    // generated and dropped right after (`unique_system_id.rs`), so nobody keeps using it, and an
    // id also holds the process id and the creation time in ns, so a restarted counter cannot
    // make two ids equal. Nodes of another user count as alive, so their counter stays.
    unsafe { iceoryx2::testing::remove_global_mgmt_segment::<GatewayIpc>(config) }.unwrap_or(false)
}
