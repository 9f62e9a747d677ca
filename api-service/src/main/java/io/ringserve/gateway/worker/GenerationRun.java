package io.ringserve.gateway.worker;

import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.ringserve.gateway.admission.AdmissionQueue;
import io.ringserve.gateway.api.ApiException;
import io.ringserve.gateway.api.GenerationRequest;
import io.ringserve.gateway.observability.GatewayMetrics;
import io.ringserve.protocol.v1.ErrorCode;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.GenerateRequest;
import io.ringserve.protocol.v1.SamplingParameters;
import io.ringserve.protocol.v1.StoppingParameters;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import reactor.core.Disposable;
import reactor.core.publisher.Flux;
import reactor.core.publisher.FluxSink;
import reactor.core.scheduler.Schedulers;

/**
 * Runs one request on the workers: one server-streaming Generate call at a time. A call that fails before
 * its first token (RESOURCE_EXHAUSTED, UNAVAILABLE, transport error, first-token timeout) is retried on
 * another worker; one that fails after tokens were sent is replayed elsewhere with prompt + tokens already
 * sent as the new prompt and the same sampling parameters, so the stream continues. Cancelling the
 * returned Flux cancels the gRPC call at once.
 */
public final class GenerationRun {
    private final GenerationRequest request;
    private final AdmissionQueue admission;
    private final GatewayMetrics metrics;
    private final Duration firstTokenTimeout;
    private final int maxAttempts;
    private final FluxSink<WorkerOutput> sink;
    private final String requestId = UUID.randomUUID().toString();
    private final long startNanos = System.nanoTime();
    private final Set<String> tried = new HashSet<>();
    private int[] generated = new int[0];
    private int attempts;
    private boolean done;
    private Lease lease;
    private ClientCallStreamObserver<GenerateRequest> call;
    private Disposable firstTokenTimer;
    private boolean attemptGotToken;
    private boolean permitHeld;

    private GenerationRun(GenerationRequest request, AdmissionQueue admission, GatewayMetrics metrics,
                          Duration firstTokenTimeout, int maxAttempts, FluxSink<WorkerOutput> sink) {
        this.request = request;
        this.admission = admission;
        this.metrics = metrics;
        this.firstTokenTimeout = firstTokenTimeout;
        this.maxAttempts = maxAttempts;
        this.sink = sink;
    }

    /**
     * The outputs of one request, starting on the worker slot already acquired.
     *
     * @param firstLease slot from the admission queue; released when the call ends
     */
    public static Flux<WorkerOutput> start(GenerationRequest request, Lease firstLease, AdmissionQueue admission,
                                           GatewayMetrics metrics, Duration firstTokenTimeout, int maxAttempts) {
        // gRPC callbacks → FluxSink<WorkerOutput>; the buffer only holds what the client has not read yet
        return Flux.create(sink -> {
            GenerationRun run = new GenerationRun(request, firstLease, admission, metrics, firstTokenTimeout, maxAttempts, sink);
            sink.onDispose(run::dispose);
            run.call(firstLease);
        }, FluxSink.OverflowStrategy.BUFFER);
    }

    private GenerationRun(GenerationRequest request, Lease firstLease, AdmissionQueue admission, GatewayMetrics metrics,
                          Duration firstTokenTimeout, int maxAttempts, FluxSink<WorkerOutput> sink) {
        this(request, admission, metrics, firstTokenTimeout, maxAttempts, sink);
    }

    private synchronized void call(Lease next) {
        if (done) {
            next.release();
            return;
        }
        lease = next;
        attempts++;
        attemptGotToken = false;
        WorkerNode node = next.node();
        tried.add(node.address());
        permitHeld = node.breaker().tryAcquirePermission();
        if (!permitHeld) {
            failed(next, "circuit open", true, false);
            return;
        }
        GenerateRequest.Builder b = GenerateRequest.newBuilder().setRequestId(requestId + "-" + attempts)
                .setSampling(sampling())
                .setStopping(StoppingParameters.newBuilder().setMaxNewTokens(request.maxTokens() - generated.length))
                .setLogprobs(request.logprobs())
                .setTopLogprobs(request.topLogprobs())
                // the tokens already streamed go back as prompt; the worker treats them as output and
                // continues the seeded sampler after them, so the client's stream goes on unchanged
                .setReplayedTokens(generated.length);
        for (int id : request.promptTokenIds()) {
            b.addPromptTokenIds(id);
        }
        for (int id : generated) {
            b.addPromptTokenIds(id);
        }
        Lease mine = next;
        long callStart = System.nanoTime();
        firstTokenTimer = Schedulers.parallel().schedule(() -> firstTokenTimedOut(mine),
                firstTokenTimeout.toMillis(), TimeUnit.MILLISECONDS);
        node.stub().generate(b.build(), new ClientResponseObserver<GenerateRequest, GenerateEvent>() {
            @Override
            public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
                call = requestStream;
            }

            @Override
            public void onNext(GenerateEvent event) {
                onEvent(mine, event, callStart);
            }

            @Override
            public void onError(Throwable t) {
                Status s = Status.fromThrowable(t);
                boolean retryable = switch (s.getCode()) {
                    case INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE, UNIMPLEMENTED, PERMISSION_DENIED,
                         UNAUTHENTICATED -> false;
                    default -> true;
                };
                failed(mine, "worker call failed: " + s.getCode(), retryable, s.getCode() != Status.Code.RESOURCE_EXHAUSTED);
            }

            @Override
            public void onCompleted() {
                failed(mine, "worker stream ended without a finished event", true, true);
            }
        });
    }

    private synchronized void firstTokenTimedOut(Lease attempt) {
        if (attempt == lease && !attemptGotToken && !done) {
            cancelCall();
            failed(attempt, "no first token within " + firstTokenTimeout.toMillis() + " ms", true, true);
        }
    }

    private SamplingParameters sampling() {
        GenerationRequest.Sampling s = request.sampling();
        SamplingParameters.Builder b = SamplingParameters.newBuilder()
                .setTemperature((float) s.temperature()).setTopK(s.topK()).setTopP((float) s.topP())
                .setMinP((float) s.minP()).setRepetitionPenalty((float) s.repetitionPenalty())
                .setPresencePenalty((float) s.presencePenalty()).setFrequencyPenalty((float) s.frequencyPenalty());
        if (s.seed() != null) {
            b.setSeed(s.seed());
        }
        return b.build();
    }

    private synchronized void onEvent(Lease attempt, GenerateEvent event, long callStart) {
        if (attempt != lease || done) {
            return;
        }
        switch (event.getEventCase()) {
            case TOKENS -> {
                if (event.getTokens().getTokenIdsCount() == 0) {
                    return;
                }
                if (!attemptGotToken) {
                    attemptGotToken = true;
                    if (firstTokenTimer != null) {
                        firstTokenTimer.dispose();
                    }
                    if (generated.length == 0) {
                        metrics.firstToken(Duration.ofNanos(System.nanoTime() - startNanos));
                    }
                }
                int[] ids = event.getTokens().getTokenIdsList().stream().mapToInt(Integer::intValue).toArray();
                int[] all = java.util.Arrays.copyOf(generated, generated.length + ids.length);
                System.arraycopy(ids, 0, all, generated.length, ids.length);
                generated = all;
                sink.next(new WorkerOutput.Tokens(ids, event.getTokens().getLogprobsList()));
            }
            case FINISHED -> {
                done = true;
                if (permitHeld) {
                    attempt.node().breaker().onSuccess(System.nanoTime() - callStart, TimeUnit.NANOSECONDS);
                    permitHeld = false;
                }
                release();
                String reason = switch (event.getFinished().getReason()) {
                    case LENGTH -> "length";
                    default -> "stop";
                };
                metrics.tokens(request.promptTokenIds().length, generated.length);
                metrics.latency(Duration.ofNanos(System.nanoTime() - startNanos));
                sink.next(new WorkerOutput.Finished(reason, request.promptTokenIds().length, generated.length));
                sink.complete();
            }
            case ERROR -> {
                ErrorCode code = event.getError().getCode();
                boolean retryable = code == ErrorCode.RESOURCE_EXHAUSTED || code == ErrorCode.UNAVAILABLE
                        || code == ErrorCode.INTERNAL;
                cancelCall();
                if (code == ErrorCode.INVALID_REQUEST) {
                    done = true;
                    release();
                    String param = event.getError().hasParam() ? event.getError().getParam() : null;
                    sink.error(ApiException.invalid(param, "the worker rejected the request: " + event.getError().getMessage()));
                    return;
                }
                failed(attempt, "worker error " + code, retryable, code != ErrorCode.RESOURCE_EXHAUSTED);
            }
            default -> { }
        }
    }

    private synchronized void failed(Lease attempt, String why, boolean retryable, boolean breakerFailure) {
        if (attempt != lease || done) {
            return;
        }
        if (firstTokenTimer != null) {
            firstTokenTimer.dispose();
        }
        if (permitHeld && breakerFailure) {
            attempt.node().breaker().onError(0, TimeUnit.NANOSECONDS, new IllegalStateException(why));
        } else if (permitHeld) {
            attempt.node().breaker().releasePermission();
        }
        permitHeld = false;
        release();
        // later callbacks of this attempt (e.g. the CANCELLED error after our own cancel) are ignored
        lease = null;
        if (!retryable || attempts >= maxAttempts) {
            done = true;
            sink.error(generated.length == 0
                    ? ApiException.unavailable("No worker could serve the request: " + why, "worker_unavailable")
                    : ApiException.server("The worker failed mid-generation: " + why, "worker_failed"));
            return;
        }
        metrics.rerouted(generated.length == 0 ? "retry" : "replay");
        // Mono<Lease> from the queue → next call; a queue failure ends the stream with its error
        admission.acquire(Set.copyOf(tried)).subscribe(this::call, e -> {
            synchronized (this) {
                done = true;
            }
            sink.error(e);
        });
    }

    private void release() {
        if (lease != null) {
            lease.release();
        }
    }

    private void cancelCall() {
        ClientCallStreamObserver<GenerateRequest> c = call;
        if (c != null) {
            c.cancel("cancelled by the gateway", null);
        }
    }

    private synchronized void dispose() {
        boolean wasDone = done;
        done = true;
        if (firstTokenTimer != null) {
            firstTokenTimer.dispose();
        }
        if (!wasDone) {
            cancelCall();
            if (lease != null && permitHeld) {
                lease.node().breaker().releasePermission();
                permitHeld = false;
            }
        }
        release();
    }
}
