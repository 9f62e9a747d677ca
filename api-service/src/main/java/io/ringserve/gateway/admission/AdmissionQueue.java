package io.ringserve.gateway.admission;

import io.ringserve.gateway.api.ApiException;
import io.ringserve.gateway.config.GatewayProperties;
import io.ringserve.gateway.observability.GatewayMetrics;
import io.ringserve.gateway.worker.Lease;
import io.ringserve.gateway.worker.WorkerPool;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import reactor.core.Disposable;
import reactor.core.publisher.Mono;
import reactor.core.publisher.MonoSink;
import reactor.core.scheduler.Schedulers;

/**
 * Bounded FIFO of requests waiting for a worker slot. Full → 429 with Retry-After; waiting longer than
 * the maximum → 503.
 */
public final class AdmissionQueue {
    private final WorkerPool pool;
    private final GatewayProperties.Queue config;
    private final GatewayMetrics metrics;
    private final Deque<Waiter> waiters = new ArrayDeque<>();

    public AdmissionQueue(WorkerPool pool, GatewayProperties.Queue config, GatewayMetrics metrics) {
        this.pool = pool;
        this.config = config;
        this.metrics = metrics;
        pool.onCapacity(this::drain);
    }

    /** Requests waiting now. */
    public synchronized int size() {
        return waiters.size();
    }

    /** A slot on a worker, preferring workers not in {@code avoid}; waits in the queue when none has room. */
    public Mono<Lease> acquire(Set<String> avoid) {
        return Mono.create(sink -> {
            Waiter w = new Waiter(avoid, sink);
            synchronized (this) {
                if (waiters.isEmpty()) {
                    Lease lease = pool.tryLease(avoid);
                    if (lease != null) {
                        metrics.admitted();
                        w.claim();
                        sink.success(lease);
                        return;
                    }
                }
                if (waiters.size() >= config.size()) {
                    metrics.rejected("queue_full");
                    sink.error(ApiException.tooMany("The server is overloaded: the request queue is full; retry later",
                            "queue_full", 1));
                    return;
                }
                waiters.addLast(w);
            }
            // timer on the parallel scheduler: a waiter still queued at max-wait gets 503
            Disposable timer = Schedulers.parallel().schedule(() -> {
                if (w.claim()) {
                    remove(w);
                    metrics.rejected("queue_timeout");
                    sink.error(ApiException.unavailable("No worker became available within "
                            + config.maxWait().toMillis() + " ms", "queue_timeout"));
                }
            }, config.maxWait().toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
            sink.onDispose(() -> {
                timer.dispose();
                if (w.claim()) {
                    remove(w);
                }
            });
            drain();
        });
    }

    private synchronized void remove(Waiter w) {
        waiters.remove(w);
    }

    /** Hands free slots to waiters in order. */
    public void drain() {
        List<Runnable> grants = new ArrayList<>();
        synchronized (this) {
            while (!waiters.isEmpty()) {
                Waiter w = waiters.peekFirst();
                Lease lease = pool.tryLease(w.avoid);
                if (lease == null) {
                    break;
                }
                waiters.pollFirst();
                if (w.claim()) {
                    metrics.admitted();
                    grants.add(() -> w.sink.success(lease));
                } else {
                    grants.add(lease::release);
                }
            }
        }
        grants.forEach(Runnable::run);
    }

    private static final class Waiter {
        final Set<String> avoid;
        final MonoSink<Lease> sink;
        final AtomicBoolean done = new AtomicBoolean();

        Waiter(Set<String> avoid, MonoSink<Lease> sink) {
            this.avoid = avoid;
            this.sink = sink;
        }

        boolean claim() {
            return done.compareAndSet(false, true);
        }
    }
}
