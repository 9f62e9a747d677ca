package io.ringserve.worker.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.protocol.v1.HiddenDtype;
import io.ringserve.worker.cuda.CudaDevice;
import io.ringserve.worker.cuda.CudaRunner;
import io.ringserve.worker.cuda.CudaWeights;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent.Finished;
import io.ringserve.worker.engine.EngineObserver;
import io.ringserve.worker.engine.EngineRequest;
import io.ringserve.worker.pipeline.PipelineTest.Recorder;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A pipeline of CUDA shards on one GPU, on loopback in one JVM (each shard with its own stream, as each stage process
 * has): the head's engine over a {@link PipelineRunner} whose layers run on the GPU, the later stages as
 * {@link StageService}s over GPU shards behind real gRPC servers, float32 hidden states. Against one whole-model CUDA
 * worker with the same scheduling, the workload of {@link PipelineTest} (greedy, seeded sampling drawn on the device,
 * penalties and logprobs sampled on the host, a replay, three cancellations, preemptions) gives the same events with
 * the same bits, for two and three stages, with one engine step in the chain at a time and with as many as stages.
 */
class CudaPipelineTest {

    @GpuTest
    void cudaStagesGiveBitForBitTheOutputsOfOneCudaWorker() throws Exception {
        ModelConfig config = ModelConfig.load(TestChain.MODEL);
        List<EngineRequest> requests = PipelineTest.workload();
        List<Recorder> expected;
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(TestChain.MODEL)) {
            try (Gpu whole = Gpu.load(config, ckpt, LayerRange.all(config.numHiddenLayers()));
                 Engine one = new Engine(whole.runner, TestChain.EOS, PipelineTest.settings(whole.runner.kvBytesPerBlock(8), 30), EngineObserver.NONE)
                         .start()) {
                expected = PipelineTest.run(one, requests, new int[requests.size()]);
            }
            for (String setup : List.of("0-1,1-3", "0-2,2-3", "0-1,1-2,2-3", "0-1,1-3 2", "0-1,1-2,2-3 3")) {
                String layout = setup.split(" ")[0];
                int stepsInFlight = setup.contains(" ") ? Integer.parseInt(setup.split(" ")[1]) : 1;
                int[] cancelAfter = new int[requests.size()];
                cancelAfter[2] = 3;
                cancelAfter[7] = 1;
                cancelAfter[10] = 6;
                List<LayerRange> ranges = TestChain.layout(layout, config.numHiddenLayers());
                List<Gpu> gpus = new ArrayList<>();
                List<StageService> stages = new ArrayList<>();
                List<Server> servers = new ArrayList<>();
                PipelineRunner head = null;
                try {
                    for (LayerRange r : ranges) {
                        gpus.add(Gpu.load(config, ckpt, r));
                    }
                    String next = null;
                    for (int i = ranges.size() - 1; i >= 1; i--) { // last to first: each stage needs the address of the next
                        StageService s = new StageService(gpus.get(i).runner, StageIdentity.of(TestChain.MODEL, ranges.get(i)), 1L << 30, next,
                                Duration.ofSeconds(20));
                        stages.add(s);
                        Server server = StageChannels.configure(NettyServerBuilder.forAddress(new InetSocketAddress("localhost", 0))).addService(s).build()
                                .start();
                        servers.add(server);
                        next = "localhost:" + server.getPort();
                    }
                    head = new PipelineRunner(gpus.getFirst().runner, StageIdentity.of(TestChain.MODEL, ranges.getFirst()), next, 40,
                            new PipelineRunner.Settings(Duration.ofSeconds(20), 0, Duration.ofMillis(100), HiddenDtype.HIDDEN_FLOAT32,
                            stepsInFlight));
                    try (Engine engine = new Engine(head, TestChain.EOS, PipelineTest.settings(head.kvBytesPerBlock(8), 30), EngineObserver.NONE)
                            .start()) {
                        long end = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                        while (!head.isWhole()) {
                            assertTrue(System.nanoTime() < end, layout + ": the chain did not become whole: " + head.brokenReason());
                            Thread.sleep(10);
                        }
                        List<Recorder> got = PipelineTest.run(engine, requests, cancelAfter);
                        for (int i = 0; i < requests.size(); i++) {
                            if (cancelAfter[i] > 0) {
                                assertInstanceOf(Finished.class, got.get(i).end.get());
                                int[] prefix = got.get(i).ids();
                                assertArrayEquals(Arrays.copyOf(expected.get(i).ids(), prefix.length), prefix, layout + " request " + i + " (cancelled)");
                            } else {
                                assertEquals(expected.get(i).events, got.get(i).events, layout + " request " + i);
                            }
                        }
                        assertEquals(ranges.size(), head.stats().stages());
                        assertEquals(stepsInFlight, head.mostStepsInFlight(), setup);
                    }
                } finally {
                    if (head != null) {
                        head.close();
                    }
                    for (Server s : servers) {
                        s.shutdownNow();
                    }
                    for (StageService s : stages) {
                        s.close();
                    }
                    for (Gpu g : gpus) {
                        g.close();
                    }
                }
            }
        }
    }

    /** One shard's own device (its own stream), weights and runner. */
    private record Gpu(CudaDevice device, CudaWeights weights, CudaRunner runner) implements AutoCloseable {
        static Gpu load(ModelConfig config, SafetensorsCheckpoint ckpt, LayerRange range) {
            CudaDevice device = CudaDevice.open(0);
            CudaWeights weights = CudaWeights.load(device, config, ckpt, range, null);
            return new Gpu(device, weights, new CudaRunner(device, weights));
        }

        @Override
        public void close() {
            runner.close();
            weights.close();
            device.close();
        }
    }
}
