package io.ringserve.gateway.worker;

import java.util.concurrent.atomic.AtomicBoolean;

/** A slot on one worker held for one call; released exactly once. */
public final class Lease {
    private final WorkerNode node;
    private final WorkerPool pool;
    private final AtomicBoolean released = new AtomicBoolean();

    Lease(WorkerNode node, WorkerPool pool) {
        this.node = node;
        this.pool = pool;
    }

    public WorkerNode node() { return node; }

    /** Gives the slot back; later calls do nothing. */
    public void release() {
        if (released.compareAndSet(false, true)) {
            node.inFlight().decrementAndGet();
            pool.capacityChanged();
        }
    }
}
