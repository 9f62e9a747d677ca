package io.ringserve.worker.service;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.protocol.v1.FinishReason;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.LoadRequest;
import io.ringserve.protocol.v1.LoadResponse;
import io.ringserve.protocol.v1.WorkerGrpc;
import io.ringserve.worker.engine.Generator;
import io.ringserve.worker.reference.Golden;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.util.unit.DataSize;

/**
 * The gRPC service without Spring, over the in-process transport: many concurrent streams, some cancelled by
 * their clients mid-stream and some refused at once, interleave on one engine; every stream keeps its shape and
 * the finished ones carry exactly their solo tokens. A small batch budget and KV cache (21 blocks for up to 8
 * sequences of up to 11 blocks) force many engine steps and preemptions.
 */
class WorkerInProcessConcurrencyTest {
    static WorkerEngine worker;
    static Server server;
    static ManagedChannel channel;
    static final SimpleMeterRegistry METRICS = new SimpleMeterRegistry();

    @BeforeAll
    static void start() throws Exception {
        Path model = Golden.dir("tiny-ring-a");
        WorkerProperties properties = new WorkerProperties(model, "in-process", WorkerProperties.Backend.CPU, 0, DataSize.ofKilobytes(256), 16, 8, 64, 24,
                Duration.ofSeconds(10));
        worker = new WorkerEngine(properties, new HealthStatusManager(), event -> { }, METRICS);
        worker.start();
        String name = InProcessServerBuilder.generateName();
        server = InProcessServerBuilder.forName(name).addService(new WorkerGrpcService(worker)).build().start();
        channel = InProcessChannelBuilder.forName(name).build();
    }

    @AfterAll
    static void stop() throws Exception {
        channel.shutdownNow();
        worker.stop();
        server.shutdownNow();
        worker.destroy();
    }

    @Test
    void concurrentStreamsWithCancellationsAndRefusalsStayWellFormed() throws Exception {
        WorkerGrpc.WorkerStub stub = WorkerGrpc.newStub(channel);
        List<WorkerTestSupport.Call> calls = new ArrayList<>();
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            int[] prompt = WorkerTestSupport.prompt(100 + i, 5 + 7 * i % 40);
            prompts.add(prompt);
            int kind = i % 3; // 0: runs to the end, 1: cancelled after its first tokens, 2: refused (max_new_tokens 0)
            var request = WorkerTestSupport.greedy("c" + i, prompt, maxNewTokens(i), true);
            calls.add(WorkerTestSupport.Call.start(stub, request, kind == 1 ? WorkerTestSupport.Call::cancel : null));
        }
        int cancelled = 0;
        for (int i = 0; i < calls.size(); i++) {
            WorkerTestSupport.Call c = calls.get(i);
            Throwable end = c.await();
            switch (i % 3) {
                case 0 -> assertFinishedLikeSolo(i, c, end, prompts.get(i));
                case 1 -> {
                    if (end == null) {
                        // the server finished before the client's cancel reached it: a complete, correct stream
                        assertFinishedLikeSolo(i, c, end, prompts.get(i));
                    } else {
                        cancelled++;
                        assertEquals(Status.Code.CANCELLED, Status.fromThrowable(end).getCode(), "call " + i);
                        assertTrue(c.events.stream().allMatch(GenerateEvent::hasTokens), "call " + i + ": only tokens before the cancel");
                    }
                }
                default -> {
                    assertNull(end, "call " + i);
                    assertEquals(1, c.events.size());
                    assertEquals("stopping.max_new_tokens", c.events.getFirst().getError().getParam());
                }
            }
        }
        assertTrue(cancelled > 0, "at least one call was cancelled mid-stream");
        WorkerTestSupport.await(() -> {
            LoadResponse l = WorkerGrpc.newBlockingStub(channel).load(LoadRequest.getDefaultInstance());
            return l.getRunning() == 0 && l.getWaiting() == 0 && l.getKvFreeBlocks() == l.getKvTotalBlocks();
        }, "every KV block is free again");
        assertTrue(METRICS.get("vllm:num_preemptions").counter().count() > 0, "the KV budget forced preemptions");
    }

    /**
     * Refused at once, or long enough that a cancel after the first tokens finds it running — and that the calls
     * that run to the end hold 6 to 10 of the 21 KV blocks each, so three running at once already force a preemption
     * (with shorter ones, on a fast machine the early calls could finish before the late ones arrive, and none came).
     */
    static int maxNewTokens(int call) {
        return switch (call % 3) {
            case 0 -> 90 + call;
            case 1 -> 100 + call;
            default -> 0;
        };
    }

    static void assertFinishedLikeSolo(int i, WorkerTestSupport.Call c, Throwable end, int[] prompt) {
        assertNull(end, "call " + i);
        GenerateEvent last = WorkerTestSupport.terminal(c.events);
        assertEquals(FinishReason.LENGTH, last.getFinished().getReason(), "call " + i);
        assertArrayEquals(solo(prompt, maxNewTokens(i)), WorkerTestSupport.ids(c.events), "call " + i);
    }

    /** The solo reference: the single-sequence generator. */
    static int[] solo(int[] prompt, int maxNewTokens) {
        return Generator.generate(worker.model().forward(), prompt, SamplingParams.greedy(), new StoppingParams(maxNewTokens, Set.of(), true), null)
                .tokens();
    }
}
