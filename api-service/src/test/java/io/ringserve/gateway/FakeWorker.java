package io.ringserve.gateway;

import io.grpc.Server;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.grpc.health.v1.HealthCheckResponse;
import io.ringserve.protocol.v1.FinishReason;
import io.ringserve.protocol.v1.FinishedEvent;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.GenerateRequest;
import io.ringserve.protocol.v1.InfoRequest;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.LoadRequest;
import io.ringserve.protocol.v1.LoadResponse;
import io.ringserve.protocol.v1.TokenLogprob;
import io.ringserve.protocol.v1.TokensEvent;
import io.ringserve.protocol.v1.TopLogprob;
import io.ringserve.protocol.v1.WorkerGrpc;
import io.grpc.Status;
import io.ringserve.protocol.v1.ErrorCode;
import io.ringserve.protocol.v1.ErrorEvent;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

/** Scripted in-process worker: streams {@link #script} one token per event, then EOS. */
final class FakeWorker extends WorkerGrpc.WorkerImplBase {
    volatile int[] script = new int[0];
    volatile long delayMillis;
    final AtomicInteger calls = new AtomicInteger();
    /** Calls (on any fake worker) that still fail before their first token with RESOURCE_EXHAUSTED. */
    static final AtomicInteger FAIL_BEFORE_FIRST = new AtomicInteger();
    /** Calls (on any fake worker) that still fail with UNAVAILABLE after sending this many tokens; 0 is off. */
    static volatile int failAfterTokens;
    static final AtomicInteger FAIL_AFTER = new AtomicInteger();
    /** Calls (on any fake worker) that still never answer at all. */
    static final AtomicInteger HOLD = new AtomicInteger();
    /** Reported as waiting requests by Load, to make every worker look full. */
    static volatile int extraWaiting;
    /** Counts down when any call is cancelled by the client side. */
    static volatile CountDownLatch cancelled = new CountDownLatch(1);
    volatile GenerateRequest last;
    /** Reported in Info; empty means "not reported". */
    volatile String tokenizerSha256 = "";
    /** Reported in Info as the architecture. */
    volatile String architecture = "BailingMoeV2ForCausalLM";
    final HealthStatusManager health = new HealthStatusManager();
    final Server server;

    FakeWorker(String name) throws Exception {
        server = InProcessServerBuilder.forName(name).directExecutor().addService(this)
                .addService(health.getHealthService()).build().start();
    }

    void serving(boolean up) {
        health.setStatus("", up ? HealthCheckResponse.ServingStatus.SERVING : HealthCheckResponse.ServingStatus.NOT_SERVING);
    }

    @Override
    public void info(InfoRequest request, StreamObserver<InfoResponse> out) {
        out.onNext(InfoResponse.newBuilder().setModelId("tiny-ring").setContextLength(512).setMaxRunning(4)
                .setTokenizerSha256(tokenizerSha256).setArchitecture(architecture)
                .setProtocolVersion(1).build());
        out.onCompleted();
    }

    @Override
    public void load(LoadRequest request, StreamObserver<LoadResponse> out) {
        out.onNext(LoadResponse.newBuilder().setKvTotalBlocks(100).setKvFreeBlocks(100).setWaiting(extraWaiting).build());
        out.onCompleted();
    }

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateEvent> out) {
        calls.incrementAndGet();
        last = request;
        ServerCallStreamObserver<GenerateEvent> call = (ServerCallStreamObserver<GenerateEvent>) out;
        call.setOnCancelHandler(() -> cancelled.countDown());
        int[] s = script;
        int offset = replayOffset(request, s);
        if (HOLD.getAndUpdate(v -> Math.max(0, v - 1)) > 0) {
            return;
        }
        boolean failFirst = FAIL_BEFORE_FIRST.getAndUpdate(v -> Math.max(0, v - 1)) > 0;
        int failAfter = failAfterTokens > 0 && FAIL_AFTER.getAndUpdate(v -> Math.max(0, v - 1)) > 0 ? failAfterTokens : -1;
        Thread.ofVirtual().start(() -> {
            if (failFirst) {
                call.onNext(GenerateEvent.newBuilder().setError(ErrorEvent.newBuilder()
                        .setCode(ErrorCode.RESOURCE_EXHAUSTED).setMessage("full")).build());
                call.onCompleted();
                return;
            }
            int n = Math.min(s.length - offset, request.getStopping().getMaxNewTokens());
            for (int i = 0; i < n; i++) {
                if (call.isCancelled()) {
                    return;
                }
                if (i == failAfter) {
                    call.onError(Status.UNAVAILABLE.withDescription("worker lost").asRuntimeException());
                    return;
                }
                sleep();
                TokensEvent.Builder t = TokensEvent.newBuilder().addTokenIds(s[offset + i]);
                if (request.getLogprobs()) {
                    TokenLogprob.Builder lp = TokenLogprob.newBuilder().setLogprob(-0.5f);
                    for (int k = 0; k < request.getTopLogprobs(); k++) {
                        lp.addTopLogprobs(TopLogprob.newBuilder().setTokenId(s[offset + i]).setLogprob(-0.5f - k));
                    }
                    t.addLogprobs(lp);
                }
                call.onNext(GenerateEvent.newBuilder().setTokens(t).build());
            }
            if (!call.isCancelled()) {
                call.onNext(GenerateEvent.newBuilder().setFinished(FinishedEvent.newBuilder()
                        .setReason(offset + n < s.length ? FinishReason.LENGTH : FinishReason.EOS)).build());
                call.onCompleted();
            }
        });
    }

    /** Tokens of the script the prompt already ends with (a replay after a failure elsewhere). */
    private static int replayOffset(GenerateRequest request, int[] s) {
        List<Integer> p = request.getPromptTokenIdsList();
        for (int k = Math.min(p.size(), s.length); k > 0; k--) {
            boolean match = true;
            for (int j = 0; j < k && match; j++) {
                match = p.get(p.size() - k + j) == s[j];
            }
            if (match) {
                return k;
            }
        }
        return 0;
    }

    private void sleep() {
        try {
            Thread.sleep(delayMillis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
