package io.ringserve.worker.pipeline;

import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.ringserve.protocol.v1.PipelineStageGrpc;
import io.ringserve.protocol.v1.StageHello;
import io.ringserve.protocol.v1.StageReady;
import io.ringserve.protocol.v1.StageRequest;
import io.ringserve.protocol.v1.StageResponse;
import io.ringserve.protocol.v1.StageResult;
import io.ringserve.protocol.v1.StageStep;

/**
 * One session with the next stage: a Stage stream opened with a {@link StageHello}, answered by
 * {@link StageReady} (the rest of the chain joined), then results in step order; it ends with a status:
 * FAILED_PRECONDITION when the next stage refused to join, anything else when it was lost.
 */
final class NextStage implements ClientResponseObserver<StageRequest, StageResponse> {

    /** What the session reports, on gRPC threads, in order: ready once, results, closed once at the end. */
    interface Listener {
        void ready(StageReady ready);

        void result(StageResult result);

        void closed(Status status);
    }

    private final String target;
    private final Listener listener;
    private final Object lock = new Object();
    private ClientCallStreamObserver<StageRequest> requests; // guarded by lock after start
    private boolean closed; // guarded by lock

    private NextStage(String target, Listener listener) {
        this.target = target;
        this.listener = listener;
    }

    /** Opens the stream over {@code channel} and sends the hello; the listener hears the answer. */
    static NextStage open(Channel channel, String target, StageHello hello, Listener listener) {
        NextStage next = new NextStage(target, listener);
        PipelineStageGrpc.newStub(channel).stage(next);
        next.send(StageRequest.newBuilder().setHello(hello).build());
        return next;
    }

    /** host:port of the next stage. */
    String target() {
        return target;
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<StageRequest> requestStream) {
        this.requests = requestStream;
    }

    void send(StageStep step) {
        send(StageRequest.newBuilder().setStep(step).build());
    }

    private void send(StageRequest request) {
        synchronized (lock) {
            if (closed) {
                return;
            }
            try {
                requests.onNext(request);
            } catch (RuntimeException e) {
                // the call ended between the check and the write; its onError reports why
            }
        }
    }

    /** Ends the session from this side (the next stage sees CANCELLED); the listener hears {@code closed}. */
    void close(String reason) {
        synchronized (lock) {
            if (closed) {
                return;
            }
            requests.cancel(reason, null);
        }
    }

    @Override
    public void onNext(StageResponse response) {
        switch (response.getKindCase()) {
            case READY -> listener.ready(response.getReady());
            case RESULT -> listener.result(response.getResult());
            case KIND_NOT_SET -> {
                // a newer peer's message kind this worker does not know: nothing to act on
            }
        }
    }

    @Override
    public void onError(Throwable t) {
        synchronized (lock) {
            closed = true;
        }
        listener.closed(Status.fromThrowable(t));
    }

    @Override
    public void onCompleted() {
        synchronized (lock) {
            closed = true;
        }
        listener.closed(Status.UNAVAILABLE.withDescription("the next stage (" + target + ") ended the session"));
    }
}
