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
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
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
 * penalties and logprobs sampled on the host, a replay, three cancellations, preemptions) gives the same tokens and
 * ends, and log probabilities within batch noise (a step's bits are the whole model's for the same rows:
 * {@code CudaShardTest}; here the chain's micro-batches hold other rows), for two and three stages micro-batched, and
 * with two engine steps in the chain at a time (on the CPU emulator: the three stages).
 */
class CudaPipelineTest {
    /**
     * How far a log probability may move when its sequence ran in other batches: CUDA results depend on a step's rows
     * by summation order (gemv up to 8 rows, tensor-core GEMMs above; split attention up to 32 sequences; the tensor-core
     * experts for prefill-sized steps), and a micro-batch or a step in flight holds fewer rows than one worker's step.
     * Measured on the emulator (tiny-ring-a, this workload): at most 0.004.
     */
    private static final double LOGPROB_NOISE = 0.02;

    @GpuTest(emulated = true)
    void cudaStagesGiveTheTokensOfOneCudaWorker() throws Exception {
        ModelConfig config = ModelConfig.load(TestChain.MODEL);
        List<EngineRequest> requests = PipelineTest.workload();
        List<Recorder> expected;
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(TestChain.MODEL)) {
            try (Gpu whole = Gpu.load(config, ckpt, LayerRange.all(config.numHiddenLayers()));
                 Engine one = new Engine(whole.runner, TestChain.EOS, PipelineTest.settings(whole.runner.kvBytesPerBlock(8), 30), EngineObserver.NONE)
                         .start()) {
                expected = PipelineTest.run(one, requests, new int[requests.size()]);
            }
            // the emulator runs the three-stage chain only (a minute on two cores); PipelineTest covers the rest on the CPU
            List<String> setups = GpuTestSupport.onGpu() ? List.of("0-1,1-3", "0-1,1-2,2-3", "0-2,2-3 2") : List.of("0-1,1-2,2-3");
            for (String setup : setups) {
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
                            assertSameWithinBatchNoise(expected.get(i), got.get(i), cancelAfter[i] > 0, setup + " request " + i);
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

    /**
     * The same tokens and the same end as one CUDA worker (a cancelled request: a prefix of its tokens), log probabilities
     * and top log probabilities within {@value #LOGPROB_NOISE}: the chain runs other batches than one worker does.
     */
    private static void assertSameWithinBatchNoise(Recorder want, Recorder got, boolean cancelled, String where) throws Exception {
        EngineEvent end = got.end.get();
        int[] ids = got.ids();
        if (cancelled) {
            assertInstanceOf(Finished.class, end, where);
            assertArrayEquals(Arrays.copyOf(want.ids(), ids.length), ids, where + " (cancelled)");
        } else {
            assertEquals(want.events.getLast(), got.events.getLast(), where + ": the end");
            assertArrayEquals(want.ids(), ids, where + ": the tokens");
        }
        for (int j = 0; j < ids.length; j++) {
            float[] a = want.logprobs.get(j);
            float[] b = got.logprobs.get(j);
            assertEquals(a.length, b.length, where + " token " + j + ": top logprobs");
            for (int k = 0; k < a.length; k++) {
                double d = Math.abs(a[k] - b[k]);
                assertTrue(Float.isNaN(a[k]) ? Float.isNaN(b[k]) : d <= LOGPROB_NOISE, where + " token " + j + ": logprob " + b[k] + ", one worker "
                        + a[k]);
            }
        }
    }

    /** One shard's own device (its own stream), weights and runner. */
    private record Gpu(CudaDevice device, CudaWeights weights, CudaRunner runner) implements AutoCloseable {
        static Gpu load(ModelConfig config, SafetensorsCheckpoint ckpt, LayerRange range) {
            CudaDevice device = GpuTestSupport.openDevice();
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
