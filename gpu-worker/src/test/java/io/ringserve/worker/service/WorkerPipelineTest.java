package io.ringserve.worker.service;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.ringserve.protocol.v1.ErrorCode;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.InfoRequest;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.PipelineRole;
import io.ringserve.protocol.v1.WorkerGrpc;
import io.ringserve.worker.reference.Golden;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.springframework.util.unit.DataSize;

/**
 * Three workers of the service (without Spring, over real gRPC on loopback) holding layers 0-1, 1-2 and 2-3 of
 * the tiny model form one pipeline: the head serves Generate like a whole-model worker once the chain is whole,
 * the later stages refuse Generate, Info tells each worker's part; when the last stage goes away the head's
 * readiness and gRPC health go down and requests are refused with UNAVAILABLE until the stage is back.
 */
class WorkerPipelineTest {
    static final Duration WAIT = Duration.ofSeconds(30);

    /** One worker process as the service wires it: engine (or stage), gRPC server, health. */
    static final class Node implements AutoCloseable {
        final WorkerEngine worker;
        final WorkerGrpcServer server;
        final HealthStatusManager health = new HealthStatusManager();
        final SimpleMeterRegistry registry = new SimpleMeterRegistry();

        Node(String layers, String next, int port) {
            WorkerProperties p = new WorkerProperties(Golden.dir("tiny-ring-a"), "tiny-pipe", WorkerProperties.Backend.CPU, port, DataSize.ofMegabytes(8),
                    16, 16, 64, 128, Duration.ofSeconds(5)).withStage(layers, next, Duration.ofSeconds(5));
            worker = new WorkerEngine(p, health, event -> { }, registry);
            server = new WorkerGrpcServer(p, new WorkerGrpcService(worker), worker.stage(), health);
            server.start();
            worker.start();
        }

        String address() {
            return "localhost:" + server.port();
        }

        /** What a process kill does to the network: the server goes away at once. */
        void kill() {
            server.destroy();
        }

        @Override
        public void close() {
            server.destroy();
            worker.destroy();
        }
    }

    final List<AutoCloseable> closing = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (AutoCloseable c : closing.reversed()) {
            c.close();
        }
    }

    <T extends AutoCloseable> T closeLater(T c) {
        closing.add(c);
        return c;
    }

    ManagedChannel channel(Node n) {
        ManagedChannel c = NettyChannelBuilder.forTarget(n.address()).usePlaintext().build();
        closing.add(() -> c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
        return c;
    }

    static void await(java.util.function.BooleanSupplier condition, String what) throws InterruptedException {
        long end = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < end, "timed out after " + WAIT + " waiting until " + what);
            Thread.sleep(10);
        }
    }

    static List<GenerateEvent> generate(ManagedChannel channel, int[] prompt, int maxTokens) {
        List<GenerateEvent> events = new ArrayList<>();
        WorkerGrpc.newBlockingStub(channel).withDeadlineAfter(WAIT.toSeconds(), TimeUnit.SECONDS)
                .generate(WorkerTestSupport.greedy("p", prompt, maxTokens, true)).forEachRemaining(events::add);
        return events;
    }

    @Test
    void threeWorkersServeAsOneAndTheHeadIsReadyOnlyWhileTheChainIsWhole() throws Exception {
        Node last = closeLater(new Node("2-3", null, 0));
        int lastPort = last.server.port();
        String lastAddress = last.address();
        Node middle = closeLater(new Node("1-2", last.address(), 0));
        Node head = closeLater(new Node("0-1", middle.address(), 0));
        await(head.worker::isReady, "the head is ready (chain whole, warm-up done)");

        ManagedChannel toHead = channel(head);
        ManagedChannel toMiddle = channel(middle);
        InfoResponse info = WorkerGrpc.newBlockingStub(toHead).info(InfoRequest.getDefaultInstance());
        assertEquals(PipelineRole.PIPELINE_HEAD, info.getPipelineRole());
        assertEquals(middle.address(), info.getNextStage());
        assertEquals(0, info.getLayers().getStart());
        assertEquals(1, info.getLayers().getEnd());
        assertEquals(3, info.getLayers().getTotal());
        InfoResponse stageInfo = WorkerGrpc.newBlockingStub(toMiddle).info(InfoRequest.getDefaultInstance());
        assertEquals(PipelineRole.PIPELINE_STAGE, stageInfo.getPipelineRole());
        assertEquals(1, stageInfo.getLayers().getStart());
        assertEquals(2, stageInfo.getLayers().getEnd());
        assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(toHead).check(HealthCheckRequest.getDefaultInstance()).getStatus());

        int[] prompt = Golden.randomPrompt(5, 17);
        List<GenerateEvent> events = generate(toHead, prompt, 20);
        assertArrayEquals(solo(head, prompt, 20), WorkerTestSupport.ids(events), "the chain generates what one worker does");
        assertTrue(WorkerTestSupport.terminal(events).hasFinished());

        // each later stage counts what it ran: every micro-batch of the generation went through both
        for (Node stage : List.of(middle, last)) {
            assertEquals(1.0, stage.registry.get("ringserve_pipeline_stage_in_session").gauge().value());
            double microBatches = stage.registry.get("ringserve_pipeline_stage_micro_batches").functionCounter().count();
            assertTrue(microBatches >= 20, "a prefill and 19 decode steps at least: " + microBatches);
            assertTrue(stage.registry.get("ringserve_pipeline_stage_compute_seconds").functionCounter().count() > 0);
        }
        assertEquals(middle.registry.get("ringserve_pipeline_stage_micro_batches").functionCounter().count(),
                last.registry.get("ringserve_pipeline_stage_micro_batches").functionCounter().count());

        StatusRuntimeException refused = assertThrows(StatusRuntimeException.class, () -> generate(toMiddle, prompt, 3));
        assertEquals(Status.Code.FAILED_PRECONDITION, refused.getStatus().getCode());
        assertTrue(refused.getStatus().getDescription().contains("pipeline head"), refused.getStatus().getDescription());

        var readiness = new WorkerConfiguration().engineReadinessHealthIndicator(head.worker);
        assertEquals(org.springframework.boot.health.contributor.Status.UP, readiness.health().getStatus());

        last.kill();
        await(() -> !head.worker.isReady(), "the head's readiness goes down");
        var health = readiness.health();
        assertEquals(org.springframework.boot.health.contributor.Status.OUT_OF_SERVICE, health.getStatus());
        assertEquals(false, health.getDetails().get("pipelineWhole"));
        assertTrue(String.valueOf(health.getDetails().get("pipelineProblem")).contains(lastAddress), health.getDetails().toString());
        assertEquals(ServingStatus.NOT_SERVING, HealthGrpc.newBlockingStub(toHead).check(HealthCheckRequest.getDefaultInstance()).getStatus());
        List<GenerateEvent> unavailable = generate(toHead, prompt, 3);
        assertEquals(1, unavailable.size());
        assertEquals(ErrorCode.UNAVAILABLE, unavailable.getFirst().getError().getCode());
        assertTrue(unavailable.getFirst().getError().getMessage().contains("pipeline is not whole"), unavailable.getFirst().getError().getMessage());

        // the last stage comes back on its address: the head rejoins the chain by itself
        last.close();
        closeLater(new Node("2-3", null, lastPort));
        await(head.worker::isReady, "the head is ready again");
        assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(toHead).check(HealthCheckRequest.getDefaultInstance()).getStatus());
        assertArrayEquals(solo(head, prompt, 20), WorkerTestSupport.ids(generate(toHead, prompt, 20)));
        assertFalse(head.worker.pipeline().stats().steps() == 0);
    }

    /** Greedy tokens of the whole model for this prompt (the head's model directory, every layer). */
    static int[] solo(Node head, int[] prompt, int maxTokens) {
        try (var whole = io.ringserve.worker.engine.LocalModel.open(head.worker.model().directory())) {
            return io.ringserve.worker.engine.Generator.generate(whole.forward(), prompt, io.ringserve.model.sampling.SamplingParams.greedy(),
                    new io.ringserve.model.sampling.StoppingParams(maxTokens, java.util.Set.of(), true), null).tokens();
        }
    }
}
