package io.ringserve.worker.pipeline;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.ringserve.protocol.v1.PipelineStageGrpc;
import io.ringserve.protocol.v1.StageHello;
import io.ringserve.protocol.v1.StageReady;
import io.ringserve.protocol.v1.StageRequest;
import io.ringserve.protocol.v1.StageResponse;
import io.ringserve.protocol.v1.StageResult;
import io.ringserve.protocol.v1.StageStep;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.reference.ReferenceForward;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * {@code ringserve.v1.PipelineStage} on a worker holding layers after the head's. The previous stage opens one
 * session (a Stage stream): a {@link StageHello} this stage checks ({@link StageIdentity#refusal}, its KV
 * budget); on a middle stage the hello is passed on to the next stage and the session is ready once the rest of
 * the chain is. Steps then run in arrival order on one compute thread: a middle stage forwards its output
 * hidden states, the last stage samples and answers; answers from the next stage are passed back as they come,
 * each with this stage's compute time appended.
 *
 * <p>One session at a time: a new hello (a head that reconnected) ends the previous session. A session that
 * ends (the previous stage went away, the next stage was lost, a step failed) ends the next stage's session
 * too, so nothing in the chain waits on a session nobody feeds.
 */
public final class StageService extends PipelineStageGrpc.PipelineStageImplBase implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(StageService.class.getName());

    private final StageShard shard;
    private final StageIdentity identity;
    private final long kvBudgetBytes;
    private final String nextTarget;
    private final ManagedChannel nextChannel;
    private final Duration timeout;
    private final ExecutorService compute;
    private final ScheduledExecutorService timers;
    private final AtomicLong sessions = new AtomicLong();
    private final AtomicLong steps = new AtomicLong();
    private final AtomicLong busyNanos = new AtomicLong();
    private final AtomicReference<Session> current = new AtomicReference<>();

    /** A stage on the CPU reference: {@link ReferenceShard} over {@code forward}. */
    public StageService(ReferenceForward forward, StageIdentity identity, long kvBudgetBytes, String nextStage, Duration timeout) {
        this(new ReferenceShard(forward), identity, kvBudgetBytes, nextStage, timeout);
    }

    /**
     * @param shard         the stage's layers (not layer 0), on the CPU or a GPU; the service does not own it
     * @param kvBudgetBytes memory this stage may give its KV cache; a head asking for more blocks is refused
     * @param nextStage     host:port of the next stage; null on the last stage
     * @param timeout       how long the next stage may take to answer the hello
     */
    public StageService(ShardRunner shard, StageIdentity identity, long kvBudgetBytes, String nextStage, Duration timeout) {
        LayerRange layers = shard.layers();
        if (!layers.equals(identity.layers())) {
            throw new IllegalArgumentException("the shard holds layers " + layers + ", the identity says " + identity.layers());
        }
        if (nextStage == null && !layers.isLast()) {
            throw new IllegalArgumentException("layers " + layers + " do not reach the last layer, so a next stage is needed");
        }
        if (nextStage != null && layers.isLast()) {
            throw new IllegalArgumentException("layers " + layers + " include the last layer: this is the last stage and has no next stage");
        }
        this.shard = new StageShard(shard);
        this.identity = identity;
        this.kvBudgetBytes = kvBudgetBytes;
        this.nextTarget = nextStage;
        this.nextChannel = nextStage == null ? null : StageChannels.open(nextStage);
        this.timeout = timeout;
        this.compute = Executors.newSingleThreadExecutor(Thread.ofPlatform().name("pipeline-stage-compute").daemon(true).factory());
        this.timers = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().name("pipeline-stage-timer").daemon(true).factory());
    }

    public LayerRange layers() {
        return shard.layers();
    }

    /** host:port of the next stage, or null on the last stage. */
    public String nextStage() {
        return nextTarget;
    }

    /** A previous stage holds a ready session (the chain through this stage is whole). */
    public boolean inSession() {
        Session s = current.get();
        return s != null && s.ready;
    }

    /** Micro-batches run since start. */
    public long steps() {
        return steps.get();
    }

    /** Nanoseconds spent running micro-batches since start (layers, encoding; the lm_head and sampling on the last stage). */
    public long computeNanos() {
        return busyNanos.get();
    }

    /** A one-token pass through this stage's layers on the calling thread, outside every session. */
    public boolean selfTest() {
        return shard.selfTest();
    }

    @Override
    public StreamObserver<StageRequest> stage(StreamObserver<StageResponse> responses) {
        return new Session((ServerCallStreamObserver<StageResponse>) responses);
    }

    /** Ends the current session (the previous stage sees UNAVAILABLE), stops the threads and waits for a running step. */
    @Override
    public void close() {
        Session s = current.get();
        if (s != null) {
            s.end(Status.UNAVAILABLE.withDescription("stage " + layers() + " is shutting down"));
        }
        compute.shutdownNow();
        timers.shutdownNow();
        if (nextChannel != null) {
            nextChannel.shutdownNow();
        }
        try {
            // a step still running uses the shard, which its owner frees next (a GPU shard's memory)
            if (!compute.awaitTermination(30, TimeUnit.SECONDS)) {
                LOG.warning("stage " + layers() + ": a step was still running 30 s after the stage closed");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Why this stage refuses the hello (beyond identity), or null. */
    private String capacityRefusal(StageHello h) {
        long need = shard.kvBytes(h.getKvBlockSize(), h.getKvBlocks());
        if (h.getKvBlocks() > shard.maxKvBlocks(h.getKvBlockSize())) {
            return "the head allocates " + h.getKvBlocks() + " KV blocks, more than one array per layer of this stage holds ("
                    + shard.maxKvBlocks(h.getKvBlockSize()) + "); lower the head's kv-cache-bytes";
        }
        if (need > kvBudgetBytes) {
            return "KV cache too small: the head allocates " + h.getKvBlocks() + " blocks of " + h.getKvBlockSize() + " positions, which take "
                    + need + " bytes for this stage's layers " + layers() + ", but its ringserve.worker.kv-cache-bytes is " + kvBudgetBytes;
        }
        long stepBytes = (long) h.getMaxBatchTokens() * shard.config().hiddenSize() * StageWire.bytesPerValue(h.getHiddenDtype());
        if (stepBytes > StageWire.MAX_MESSAGE_BYTES - (1 << 20)) {
            return "a step of max-batch-tokens " + h.getMaxBatchTokens() + " carries " + stepBytes + " bytes of hidden states, more than a stage message may ("
                    + StageWire.MAX_MESSAGE_BYTES + "); lower the head's max-batch-tokens";
        }
        return null;
    }

    /** One Stage stream from the previous stage. */
    private final class Session implements StreamObserver<StageRequest>, NextStage.Listener {
        final long id = sessions.incrementAndGet();
        final ServerCallStreamObserver<StageResponse> upstream;
        final Object writeLock = new Object();
        final Map<Long, Long> computeNanos = new ConcurrentHashMap<>();
        volatile boolean ready;
        volatile boolean ended;
        volatile NextStage next;
        final CompletableFuture<Void> prepared = new CompletableFuture<>(); // this stage holds the session's KV cache
        boolean hello; // touched only by the stream's serialized inbound calls

        Session(ServerCallStreamObserver<StageResponse> upstream) {
            this.upstream = upstream;
            upstream.setOnCancelHandler(() -> end(null));
        }

        @Override
        public void onNext(StageRequest request) {
            switch (request.getKindCase()) {
                case HELLO -> hello(request.getHello());
                case STEP -> {
                    if (!ready) {
                        end(Status.FAILED_PRECONDITION.withDescription("a step arrived before the session was ready"));
                        return;
                    }
                    StageStep step = request.getStep();
                    compute.execute(() -> step(step));
                }
                case KIND_NOT_SET -> end(Status.INVALID_ARGUMENT.withDescription("a stage message with no content"));
            }
        }

        private void hello(StageHello h) {
            if (hello) {
                end(Status.FAILED_PRECONDITION.withDescription("a second hello in one session"));
                return;
            }
            hello = true;
            String refusal = identity.refusal(h);
            if (refusal == null) {
                refusal = capacityRefusal(h);
            }
            if (refusal != null) {
                LOG.warning("stage " + layers() + " refuses to join the chain: " + refusal);
                end(Status.FAILED_PRECONDITION.withDescription("stage " + layers() + " refuses to join the chain: " + refusal));
                return;
            }
            Session previous = current.getAndSet(this);
            if (previous != null) {
                previous.end(Status.UNAVAILABLE.withDescription("stage " + layers() + " accepted a new session from the previous stage"));
            }
            // queued behind the previous session's steps, which see they are stale and do nothing
            compute.execute(() -> {
                if (current.get() != this) {
                    return;
                }
                try {
                    shard.startSession(h.getKvBlockSize(), h.getKvBlocks(), h.getMaxBatchTokens(), h.getMaxSequences());
                    prepared.complete(null);
                } catch (RuntimeException e) {
                    // e.g. the GPU has less memory left than the KV cache of the head's blocks needs
                    LOG.log(Level.WARNING, "stage " + layers() + " cannot hold the session's KV cache", e);
                    end(Status.FAILED_PRECONDITION.withDescription("stage " + layers() + " refuses to join the chain: " + e.getMessage()));
                }
            });
            if (nextTarget == null) {
                // ready once this stage holds the session's KV cache (never, when it could not)
                prepared.thenRun(() -> join(StageReady.newBuilder().setLayers(StageWire.range(layers())).setStages(1).build()));
                return;
            }
            nextChannel.resetConnectBackoff(); // the next stage may just have come back
            next = NextStage.open(nextChannel, nextTarget, identity.hello(h.getKvBlockSize(), h.getKvBlocks(), h.getHiddenDtype(),
                    h.getMaxBatchTokens(), h.getMaxSequences()), this);
            timers.schedule(() -> {
                if (!ready && !ended) {
                    end(Status.UNAVAILABLE.withDescription("the next stage (" + nextTarget + ") did not answer the hello within " + timeout));
                }
            }, timeout.toMillis(), TimeUnit.MILLISECONDS);
        }

        private void join(StageReady rest) {
            if (ended) {
                return;
            }
            ready = true;
            write(StageResponse.newBuilder().setReady(rest).build());
            LOG.info("stage " + layers() + " joined a chain of " + rest.getStages() + " stage(s) from here (session " + id + ")");
        }

        /** On the compute thread. */
        private void step(StageStep step) {
            if (ended || current.get() != this) {
                return;
            }
            long t0 = System.nanoTime();
            StageShard.Outcome out;
            try {
                out = shard.run(step);
            } catch (RuntimeException e) {
                LOG.log(Level.SEVERE, "stage " + layers() + " failed running step " + step.getStepId(), e);
                end(Status.INTERNAL.withDescription("stage " + layers() + " failed running a step: " + e));
                return;
            }
            steps.incrementAndGet();
            if (out.hidden() != null) {
                int tokens = step.getHidden().getTokens();
                StageStep forward = step.toBuilder()
                        .setHidden(StageWire.encode(out.hidden(), tokens, step.getHidden().getHiddenSize(), step.getHidden().getDtype()))
                        .build();
                long busy = System.nanoTime() - t0;
                busyNanos.addAndGet(busy);
                computeNanos.put(step.getStepId(), busy);
                next.send(forward);
            } else {
                long busy = System.nanoTime() - t0;
                busyNanos.addAndGet(busy);
                write(StageResponse.newBuilder().setResult(StageResult.newBuilder()
                        .setStepId(step.getStepId())
                        .addAllSamples(out.samples())
                        .addComputeNanos(busy)).build());
            }
        }

        // ---- the next stage's answers (gRPC threads) ----

        @Override
        public void ready(StageReady rest) {
            if (ended) {
                return;
            }
            if (rest.getLayers().getStart() != layers().end() || rest.getLayers().getEnd() != layers().total()) {
                end(Status.FAILED_PRECONDITION.withDescription("the stages after " + layers() + " hold layers " + StageWire.text(rest.getLayers())
                        + ", not " + layers().end() + "-" + layers().total()));
                return;
            }
            // ready once the rest of the chain is and this stage holds the session's KV cache
            prepared.thenRun(() -> join(StageReady.newBuilder()
                    .setLayers(io.ringserve.protocol.v1.LayerRange.newBuilder().setStart(layers().start()).setEnd(layers().total()).setTotal(layers().total()))
                    .setStages(rest.getStages() + 1)
                    .build()));
        }

        @Override
        public void result(StageResult result) {
            if (ended) {
                return;
            }
            Long mine = computeNanos.remove(result.getStepId());
            write(StageResponse.newBuilder().setResult(result.toBuilder().addComputeNanos(mine == null ? 0 : mine)).build());
        }

        @Override
        public void closed(Status status) {
            if (ended) {
                return;
            }
            String cause = status.getDescription() != null ? status.getDescription() : status.getCode().toString();
            if (status.getCode() == Status.Code.FAILED_PRECONDITION) {
                end(Status.FAILED_PRECONDITION.withDescription(cause));
            } else {
                end(Status.UNAVAILABLE.withDescription("the next stage (" + nextTarget + ") was lost: " + status.getCode() + ": " + cause));
            }
        }

        // ---- the previous stage's side ----

        @Override
        public void onError(Throwable t) {
            end(null);
        }

        @Override
        public void onCompleted() {
            end(null);
        }

        private void write(StageResponse response) {
            synchronized (writeLock) {
                if (ended) {
                    return;
                }
                try {
                    upstream.onNext(response);
                } catch (RuntimeException e) {
                    // the previous stage went away; its cancel handler ends the session
                }
            }
        }

        /** Ends the session once: the next stage's session first, then the previous stage's stream (with {@code status}, or closed normally). */
        void end(Status status) {
            synchronized (writeLock) {
                if (ended) {
                    return;
                }
                ended = true;
            }
            if (ready) {
                LOG.info("stage " + layers() + " session " + id + " ended: "
                        + (status == null ? "the previous stage closed it" : status.getCode() + ": " + status.getDescription()));
            }
            NextStage n = next;
            if (n != null) {
                n.close("the previous stage's session ended");
            }
            current.compareAndSet(this, null);
            computeNanos.clear();
            try {
                if (status != null) {
                    upstream.onError(status.asRuntimeException());
                } else if (!upstream.isCancelled()) {
                    upstream.onCompleted();
                }
            } catch (RuntimeException e) {
                // already closed from the other side
            }
        }
    }
}
