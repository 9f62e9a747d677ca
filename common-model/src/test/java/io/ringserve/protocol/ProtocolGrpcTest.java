package io.ringserve.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Duration;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.ringserve.protocol.v1.Backend;
import io.ringserve.protocol.v1.FinishReason;
import io.ringserve.protocol.v1.FinishedEvent;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.GenerateRequest;
import io.ringserve.protocol.v1.InfoRequest;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.LayerRange;
import io.ringserve.protocol.v1.LoadRequest;
import io.ringserve.protocol.v1.LoadResponse;
import io.ringserve.protocol.v1.StoppingParameters;
import io.ringserve.protocol.v1.Timings;
import io.ringserve.protocol.v1.TokensEvent;
import io.ringserve.protocol.v1.Usage;
import io.ringserve.protocol.v1.WorkerGrpc;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The generated stubs and the gRPC runtime work together: a real call over the in-process transport. */
class ProtocolGrpcTest {

    /** A worker that answers from fixed data: Generate streams two token events, then finishes. */
    static final class FakeWorker extends WorkerGrpc.WorkerImplBase {
        /** A request whose id starts with this sends one token event and then keeps the stream open. */
        static final String HOLD = "hold-";

        final CountDownLatch cancelled = new CountDownLatch(1);
        final AtomicBoolean sawCancelledFlag = new AtomicBoolean();

        @Override
        public void generate(GenerateRequest request, StreamObserver<GenerateEvent> responses) {
            ServerCallStreamObserver<GenerateEvent> call = (ServerCallStreamObserver<GenerateEvent>) responses;
            call.setOnCancelHandler(() -> {
                sawCancelledFlag.set(call.isCancelled());
                cancelled.countDown();
            });
            if (request.getRequestId().startsWith(HOLD)) {
                call.onNext(tokens(7));
                return;
            }
            int last = request.getPromptTokenIds(request.getPromptTokenIdsCount() - 1);
            call.onNext(tokens(last + 1, last + 2));
            call.onNext(tokens(last + 3));
            call.onNext(GenerateEvent.newBuilder()
                    .setFinished(FinishedEvent.newBuilder()
                            .setReason(FinishReason.LENGTH)
                            .setUsage(Usage.newBuilder()
                                    .setPromptTokens(request.getPromptTokenIdsCount())
                                    .setCompletionTokens(3))
                            .setTimings(Timings.newBuilder()
                                    .setQueueTime(Duration.newBuilder().setNanos(1_000))
                                    .setTimeToFirstToken(Duration.newBuilder().setNanos(2_000))))
                    .build());
            call.onCompleted();
        }

        @Override
        public void info(InfoRequest request, StreamObserver<InfoResponse> response) {
            response.onNext(InfoResponse.newBuilder()
                    .setModelId("demo")
                    .setArchitecture("BailingMoeV2ForCausalLM")
                    .setBackend(Backend.CPU)
                    .setLayers(LayerRange.newBuilder().setStart(0).setEnd(2).setTotal(2))
                    .addEosTokenIds(2)
                    .setProtocolVersion(1)
                    .build());
            response.onCompleted();
        }

        @Override
        public void load(LoadRequest request, StreamObserver<LoadResponse> response) {
            response.onNext(LoadResponse.newBuilder()
                    .setRunning(1).setWaiting(0).setKvFreeBlocks(90).setKvTotalBlocks(100).setKvUsage(0.1f)
                    .build());
            response.onCompleted();
        }

        private static GenerateEvent tokens(int... ids) {
            TokensEvent.Builder tokens = TokensEvent.newBuilder();
            for (int id : ids) {
                tokens.addTokenIds(id);
            }
            return GenerateEvent.newBuilder().setTokens(tokens).build();
        }
    }

    private final FakeWorker worker = new FakeWorker();
    private final HealthStatusManager health = new HealthStatusManager();
    private Server server;
    private ManagedChannel channel;

    @BeforeEach
    void start() throws IOException {
        String name = InProcessServerBuilder.generateName();
        server = InProcessServerBuilder.forName(name)
                .addService(worker)
                .addService(health.getHealthService())
                .build()
                .start();
        channel = InProcessChannelBuilder.forName(name).build();
    }

    @AfterEach
    void stop() throws InterruptedException {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }

    private static GenerateRequest request(String id) {
        return GenerateRequest.newBuilder()
                .setRequestId(id)
                .addPromptTokenIds(1)
                .addPromptTokenIds(10)
                .setStopping(StoppingParameters.newBuilder().setMaxNewTokens(3))
                .build();
    }

    @Test
    void generateStreamsTokensThenFinished() {
        List<GenerateEvent> events = new ArrayList<>();
        WorkerGrpc.newBlockingStub(channel)
                .withDeadlineAfter(10, TimeUnit.SECONDS)
                .generate(request("r1"))
                .forEachRemaining(events::add);

        assertEquals(3, events.size(), events::toString);
        assertEquals(GenerateEvent.EventCase.TOKENS, events.get(0).getEventCase());
        assertEquals(List.of(11, 12), events.get(0).getTokens().getTokenIdsList());
        assertEquals(GenerateEvent.EventCase.TOKENS, events.get(1).getEventCase());
        assertEquals(List.of(13), events.get(1).getTokens().getTokenIdsList());
        FinishedEvent finished = events.get(2).getFinished();
        assertEquals(FinishReason.LENGTH, finished.getReason());
        assertEquals(2, finished.getUsage().getPromptTokens());
        assertEquals(3, finished.getUsage().getCompletionTokens());
        assertEquals(2_000, finished.getTimings().getTimeToFirstToken().getNanos());
    }

    @Test
    void infoAndLoad() {
        WorkerGrpc.WorkerBlockingStub stub =
                WorkerGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
        InfoResponse info = stub.info(InfoRequest.getDefaultInstance());
        assertEquals(1, info.getProtocolVersion());
        assertEquals("BailingMoeV2ForCausalLM", info.getArchitecture());
        assertEquals(Backend.CPU, info.getBackend());
        assertEquals(2, info.getLayers().getEnd());
        assertEquals(List.of(2), info.getEosTokenIdsList());

        LoadResponse load = stub.load(LoadRequest.getDefaultInstance());
        assertEquals(90, load.getKvFreeBlocks());
        assertEquals(0.1f, load.getKvUsage());
    }

    @Test
    void cancellingTheCallIsObservedByTheWorker() throws Exception {
        CompletableFuture<Throwable> clientError = new CompletableFuture<>();
        List<GenerateEvent> received = new ArrayList<>();
        WorkerGrpc.newStub(channel).generate(request(FakeWorker.HOLD + "r2"),
                new ClientResponseObserver<GenerateRequest, GenerateEvent>() {
                    private ClientCallStreamObserver<GenerateRequest> call;

                    @Override
                    public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
                        call = requestStream;
                    }

                    @Override
                    public void onNext(GenerateEvent event) {
                        received.add(event);
                        call.cancel("client went away", null);
                    }

                    @Override
                    public void onError(Throwable error) {
                        clientError.complete(error);
                    }

                    @Override
                    public void onCompleted() {
                        clientError.complete(null);
                    }
                });

        assertTrue(worker.cancelled.await(10, TimeUnit.SECONDS), "the worker's cancel handler ran");
        assertTrue(worker.sawCancelledFlag.get(), "isCancelled() is true inside the cancel handler");
        Throwable error = clientError.get(10, TimeUnit.SECONDS);
        StatusRuntimeException status = assertInstanceOf(StatusRuntimeException.class, error);
        assertEquals(Status.Code.CANCELLED, status.getStatus().getCode());
        assertEquals(1, received.size());
        assertEquals(List.of(7), received.getFirst().getTokens().getTokenIdsList());
    }

    @Test
    void standardHealthServiceAnswers() {
        health.setStatus(WorkerGrpc.SERVICE_NAME, HealthCheckResponse.ServingStatus.SERVING);
        HealthCheckResponse response = HealthGrpc.newBlockingStub(channel)
                .withDeadlineAfter(10, TimeUnit.SECONDS)
                .check(HealthCheckRequest.newBuilder().setService("ringserve.v1.Worker").build());
        assertEquals(HealthCheckResponse.ServingStatus.SERVING, response.getStatus());
    }
}
