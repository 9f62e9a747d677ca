package io.ringserve.worker.cli;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.config.ConfigException;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.model.template.TemplateException;
import io.ringserve.model.tokenizer.Tokenizer;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.worker.cuda.BackendSelector;
import io.ringserve.worker.cuda.CudaBackend;
import io.ringserve.worker.cuda.CudaRunner;
import io.ringserve.worker.cuda.KernelProfile;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.EngineObserver;
import io.ringserve.worker.engine.EngineRequest;
import io.ringserve.worker.engine.EngineSettings;
import io.ringserve.worker.engine.ReferenceRunner;
import io.ringserve.worker.demo.SyntheticCheckpoint;
import io.ringserve.worker.engine.Generator;
import io.ringserve.worker.engine.LocalModel;
import io.ringserve.worker.reference.Dot;
import io.ringserve.worker.service.WorkerApplication;
import io.ringserve.worker.weights.WeightsException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The worker's command line: {@code serve} (the default without arguments), {@code logits}, {@code generate},
 * {@code tokenize}, {@code detokenize}, {@code demo-model}, {@code bench}, {@code stage} ({@link PipelineCli}),
 * {@code kernel-table}. Usage errors exit 2; a file or model that cannot be used exits 1 with one line naming it.
 */
public final class Main {
    static final String USAGE = """
            usage: gpu-worker <command> [options]
              serve      [--ringserve.worker.model=DIR] [--ringserve.worker.grpc-port=N] [--server.port=N] ...
                         starts the worker service (gRPC + Actuator); the default without a command
              logits     --model DIR --tokens 1,2,3 --out FILE [--backend auto|cpu|cuda]
                         float32 little-endian logits [T, vocab] for one prefill of the tokens
              generate   [--model DIR] (--tokens 1,2,3 | --prompt TEXT | --chat FILE.json) [--max-tokens N]
                         [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--ignore-eos true]
                         prints the generated ids (comma-separated) on the first line, then the text
              tokenize   [--model DIR] --text S          prints ids, comma-separated
              detokenize [--model DIR] --tokens 1,2,3     prints the text
              demo-model --out DIR [--seed S]             writes a tiny random-weights checkpoint
              bench      [--model DIR | --preset demo|mid|lite-mid|ring-mini-2.0|ring-lite [--dummy-weights]] [--batch 1,8,32,64]
                         [--prompt-len N] [--gen-len N] [--repeats N] [--json FILE] [--backend auto|cpu|cuda] [--profile]
                         per batch size: decode tokens/s, time to first token, prefill tokens/s; at batch 1 the
                         fraction of the memory roofline (--prompt-tokens/--decode-tokens/--concurrency: older names)
                         --profile (GPU only): then per batch size a per-kernel table of eager decode steps (CUDA
                         events: us, bytes, GB/s, % of the copy bandwidth) against the timed runs' step time
                         --layers 0-A --next-stage HOST:PORT [--micro-batches M] [--stage-dtype auto|float32|bfloat16]
                         [--steps-in-flight N]:
                         the same over a pipeline head holding layers 0-A, the chain continuing at HOST:PORT; per
                         batch size also each stage's compute per step and the time between stages
              stage      (--model DIR | --preset NAME [--dummy-weights]) --layers A-B --port N [--next-stage HOST:PORT]
                         [--kv-cache-bytes 4GB] [--backend auto|cpu|cuda]
                         serves layers A-B as a pipeline stage after the head until stopped (--next-stage unless the
                         last layer is held); prints the port it listens on
              kernel-table --csv FILE [--copy-gbps N]
                         the per-kernel table of the last decode step in an Nsight Compute CSV (ncu --csv --metrics
                         gpu__time_duration.sum,dram__bytes_read.sum): kernel, grid, launches, us, bytes, GB/s
            Without --model the bundled demo model is used (random weights: its output is meaningless text).
            """;

    /** What {@link #run} returns when the service was started and keeps running after it returns. */
    static final int SERVING = -1;

    private final PrintStream out;
    private final PrintStream err;

    Main(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    public static void main(String[] args) {
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
        int code = new Main(out, System.err).run(args.length == 0 ? new String[] {"serve"} : args);
        if (code != SERVING) {
            System.exit(code);
        }
    }

    /** Runs one command; returns the process exit code. */
    int run(String[] args) {
        if (args.length == 0) {
            err.print(USAGE);
            return 2;
        }
        String command = args[0];
        if (command.equals("serve")) {
            return serve(Arrays.copyOfRange(args, 1, args.length));
        }
        Options o;
        try {
            o = Options.parse(Arrays.copyOfRange(args, 1, args.length), allowed(command));
        } catch (UsageException e) {
            err.println("error: " + e.getMessage());
            err.print(USAGE);
            return 2;
        }
        try {
            switch (command) {
                case "logits" -> logits(o);
                case "generate" -> generate(o);
                case "tokenize" -> tokenize(o);
                case "detokenize" -> detokenize(o);
                case "demo-model" -> demoModel(o);
                case "bench" -> bench(o);
                case "stage" -> new PipelineCli(out, err).stage(o, checkBackend(o));
                case "kernel-table" -> kernelTable(o);
                default -> throw new UsageException("unknown command '" + command + "'");
            }
            out.flush();
            return 0;
        } catch (UsageException e) {
            err.println("error: " + e.getMessage());
            err.print(USAGE);
            return 2;
        } catch (ConfigException | WeightsException | TemplateException | IllegalArgumentException | UncheckedIOException e) {
            err.println("error: " + e.getMessage());
            return 1;
        }
    }

    private static Set<String> allowed(String command) {
        return switch (command) {
            case "logits" -> Set.of("model", "tokens", "out", "backend");
            case "generate" -> Set.of("model", "tokens", "prompt", "chat", "max-tokens", "temperature", "top-k", "top-p", "min-p", "seed",
                    "ignore-eos", "backend", "repetition-penalty");
            case "tokenize" -> Set.of("model", "text");
            case "detokenize" -> Set.of("model", "tokens", "skip-special-tokens");
            case "demo-model" -> Set.of("out", "seed");
            case "kernel-table" -> Set.of("csv", "copy-gbps");
            case "bench" -> Set.of("model", "preset", "dummy-weights", "batch", "prompt-len", "gen-len", "repeats", "json", "prompt-tokens",
                    "decode-tokens", "backend", "concurrency", "profile", "layers", "next-stage", "micro-batches", "stage-dtype",
                    "steps-in-flight");
            case "stage" -> Set.of("model", "preset", "dummy-weights", "layers", "port", "next-stage", "kv-cache-bytes", "backend");
            default -> throw new UsageException("unknown command '" + command + "'");
        };
    }

    // ---- commands ----------------------------------------------------------------------------------

    /** Starts the Spring Boot worker service; the arguments are Spring Boot's ({@code --name=value}). */
    private int serve(String[] args) {
        try {
            WorkerApplication.start(args);
            return SERVING;
        } catch (RuntimeException e) {
            return 1; // Spring Boot has already reported why the service could not start
        }
    }

    private void logits(Options o) {
        int[] tokens = parseIds(o.required("tokens"), "--tokens");
        Path target = Path.of(o.required("out"));
        BackendSelector.Choice backend = checkBackend(o);
        try (LocalModel model = openModel(o, true)) {
            float[] logits; // (T, V)
            if (backend.backend() == BackendSelector.Backend.CUDA) {
                try (CudaBackend cuda = CudaBackend.load(model.directory(), model.config(), null)) {
                    int[] table = new int[(tokens.length + 15) / 16];
                    for (int i = 0; i < table.length; i++) {
                        table[i] = i;
                    }
                    cuda.runner().allocateKv(16, table.length);
                    logits = cuda.runner().logits(tokens, table, null);
                }
            } else {
                logits = model.forward().forward(model.forward().newCache(), tokens, true, null);
            }
            ByteBuffer buf = ByteBuffer.allocate(logits.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            buf.asFloatBuffer().put(logits);
            writeAtomically(target, buf.array());
            err.println("wrote " + tokens.length + " x " + model.config().vocabSize() + " float32 logits to " + target);
        }
    }

    private void generate(Options o) {
        BackendSelector.Choice backend = checkBackend(o);
        try (LocalModel model = openModel(o, false)) {
            int[] prompt;
            int sources = (o.has("tokens") ? 1 : 0) + (o.has("prompt") ? 1 : 0) + (o.has("chat") ? 1 : 0);
            if (sources != 1) {
                throw new UsageException("give exactly one of --tokens, --prompt, --chat");
            }
            if (o.has("tokens")) {
                prompt = parseIds(o.get("tokens"), "--tokens");
            } else if (o.has("prompt")) {
                prompt = model.tokenizer().encode(o.get("prompt"));
            } else {
                prompt = model.tokenizer().encode(model.renderChat(readChat(Path.of(o.get("chat")))));
            }
            long seed = o.has("seed") ? o.longValue("seed") : new SplittableRandom().nextLong();
            SamplingParams sampling = new SamplingParams(o.doubleValue("temperature", 0.0), o.intValue("top-k", 0), o.doubleValue("top-p", 1.0),
                    o.doubleValue("min-p", 0.0), o.doubleValue("repetition-penalty", 1.0), 0, 0, seed);
            StoppingParams stopping = new StoppingParams(o.intValue("max-tokens", 64), model.eosTokenIds(), o.boolValue("ignore-eos", false));
            Generator.Generation g = backend.backend() == BackendSelector.Backend.CUDA
                    ? generateOnGpu(model, prompt, sampling, stopping)
                    : Generator.generate(model.forward(), prompt, sampling, stopping, null);
            out.println(join(g.tokens()));
            int[] visible = g.finishReason() == Generator.FinishReason.STOP ? Arrays.copyOf(g.tokens(), g.tokens().length - 1) : g.tokens();
            try {
                out.println(model.tokenizer().decode(visible, true));
            } catch (ConfigException e) {
                err.println("note: " + e.getMessage());
            }
            err.println("finish_reason=" + g.finishReason().name().toLowerCase() + " prompt_tokens=" + prompt.length
                    + " completion_tokens=" + g.tokens().length);
        }
    }

    /** One request through the engine on the CUDA backend, as {@link Generator} reports it. */
    private static Generator.Generation generateOnGpu(LocalModel model, int[] prompt, SamplingParams sampling, StoppingParams stopping) {
        try (CudaBackend cuda = CudaBackend.load(model.directory(), model.config(), null)) {
            int positions = prompt.length + stopping.maxNewTokens();
            EngineSettings settings = new EngineSettings(1, 1, 512, 16, ((positions + 15) / 16 + 1) * cuda.runner().kvBytesPerBlock(16));
            List<Integer> ids = new ArrayList<>();
            java.util.concurrent.CompletableFuture<EngineEvent> end = new java.util.concurrent.CompletableFuture<>();
            try (Engine engine = new Engine(cuda.runner(), model.eosTokenIds(), settings, EngineObserver.NONE).start()) {
                engine.submit(new EngineRequest("cli", prompt, sampling, stopping, -1, null), e -> {
                    switch (e) {
                        case EngineEvent.Tokens t -> Arrays.stream(t.ids()).forEach(ids::add);
                        case EngineEvent.Finished f -> end.complete(f);
                        case EngineEvent.Failed f -> end.complete(f);
                    }
                });
                EngineEvent last = end.join();
                if (last instanceof EngineEvent.Failed f) {
                    throw new IllegalStateException("generation failed: " + f.message());
                }
                EngineEvent.FinishReason reason = ((EngineEvent.Finished) last).reason();
                boolean stop = reason == EngineEvent.FinishReason.EOS || reason == EngineEvent.FinishReason.STOP_TOKEN;
                return new Generator.Generation(ids.stream().mapToInt(Integer::intValue).toArray(),
                        stop ? Generator.FinishReason.STOP : Generator.FinishReason.LENGTH);
            }
        }
    }

    private void tokenize(Options o) {
        Tokenizer tokenizer = Tokenizer.fromDirectory(modelDir(o));
        out.println(join(tokenizer.encode(o.required("text"))));
    }

    private void detokenize(Options o) {
        Tokenizer tokenizer = Tokenizer.fromDirectory(modelDir(o));
        int[] ids = parseIds(o.required("tokens"), "--tokens");
        for (int id : ids) {
            if (id >= tokenizer.vocabSize()) {
                throw new IllegalArgumentException("--tokens: id " + id + " is outside the tokenizer's vocabulary [0, " + tokenizer.vocabSize() + ")");
            }
        }
        out.println(tokenizer.decode(ids, o.boolValue("skip-special-tokens", false)));
    }

    private void demoModel(Options o) {
        Path dir = Path.of(o.required("out"));
        SyntheticCheckpoint.write(dir, SyntheticCheckpoint.demoConfig(), o.longValue("seed", 42L), 0);
        err.println("wrote the demo model (random weights: its output is meaningless text) to " + dir);
    }

    private void bench(Options o) {
        BackendSelector.Choice backend = checkBackend(o);
        boolean gpu = backend.backend() == BackendSelector.Backend.CUDA;
        int promptLen = o.intValue("prompt-len", o.intValue("prompt-tokens", 128));
        int genLen = o.intValue("gen-len", o.intValue("decode-tokens", 32));
        int repeats = o.intValue("repeats", 3);
        if (promptLen < 1 || genLen < 2 || repeats < 1) {
            throw new UsageException("--prompt-len must be >= 1, --gen-len >= 2 and --repeats >= 1");
        }
        int[] batches = o.has("batch") ? parseIds(o.get("batch"), "--batch")
                : o.has("concurrency") ? parseIds(o.get("concurrency"), "--concurrency") : new int[] {1};
        for (int b : batches) {
            if (b < 1) {
                throw new UsageException("--batch sizes must be >= 1");
            }
        }
        Path json = o.has("json") ? Path.of(o.get("json")) : null;
        boolean profile = o.boolValue("profile", false);
        if (o.has("layers")) {
            if (profile) {
                throw new UsageException("--profile times a whole model's decode step; it does not combine with --layers");
            }
            new PipelineCli(out, err).bench(o, backend, batches, promptLen, genLen, repeats, json);
            return;
        }
        for (String pipelineOnly : List.of("next-stage", "micro-batches", "stage-dtype", "steps-in-flight")) {
            if (o.has(pipelineOnly)) {
                throw new UsageException("--" + pipelineOnly + " belongs to a bench over a pipeline head: give --layers 0-A too");
            }
        }
        if (profile && !gpu) {
            throw new UsageException("--profile times the CUDA kernels of a decode step: it needs the GPU (--backend cuda, or auto on a machine"
                    + " with one); this bench runs on the cpu");
        }
        boolean dummy = o.boolValue("dummy-weights", false);
        if (o.has("preset") && o.has("model")) {
            throw new UsageException("give --model DIR or --preset NAME, not both");
        }
        if (dummy && !o.has("preset")) {
            throw new UsageException("--dummy-weights needs --preset (the shape to fill with random weights)");
        }
        ModelConfig preset = o.has("preset") ? preset(o.get("preset"), gpu) : null;
        if (preset != null && !gpu && preset.parameterCount() > 2_000_000_000L) {
            String model = o.get("preset").equals("ring-lite") ? "Ring-lite" : "Ring-mini-2.0";
            throw new UsageException(String.format("--preset %s is the full %s shape (%.1f GB of bf16 weights), a GPU benchmark;"
                    + " the CPU bench takes demo, mid or lite-mid", o.get("preset"), model, preset.parameterCount() * 2 / 1e9));
        }
        if (preset != null && gpu && !dummy) {
            dummy = true; // a full-size preset is never written to disk for the GPU
        }
        Path tmp = null;
        try {
            if (gpu && dummy) {
                err.println("filling " + o.get("preset") + String.format(" with random bf16 weights on the GPU (%.2f GB)...", io.ringserve.worker.cuda.CudaWeights.deviceBytes(preset) / 1e9));
                try (CudaBackend cuda = CudaBackend.dummy(preset, 7)) {
                    benchGpu(cuda, preset, o.get("preset") + " (dummy weights)", batches, promptLen, genLen, repeats, json, profile);
                }
                return;
            }
            Path dir;
            if (preset != null) {
                tmp = writeSyntheticPreset(o.get("preset"), preset, err);
                dir = tmp.resolve("model");
            } else {
                dir = modelDir(o);
            }
            try (LocalModel model = LocalModel.open(dir)) {
                String name = preset != null ? o.get("preset") : dir.toString();
                if (gpu) {
                    try (CudaBackend cuda = CudaBackend.load(dir, model.config(), null)) {
                        benchGpu(cuda, model.config(), name, batches, promptLen, genLen, repeats, json, profile);
                    }
                } else {
                    out.printf("model: %s (hidden %d, %d layers, %d experts top-%d, vocab %d, %.1fM params); backend cpu, %d cores, dot product %s%n", name,
                            model.config().hiddenSize(), model.config().numHiddenLayers(), model.config().numExperts(), model.config().numExpertsPerTok(),
                            model.config().vocabSize(), model.config().parameterCount() / 1e6, Runtime.getRuntime().availableProcessors(), vectorNote());
                    out.printf("%d-token prompts, %d generated tokens per request%n", promptLen, genLen);
                    List<EngineBench.Result> results = EngineBench.run(() -> new ReferenceRunner(model.forward()), model.config(), batches, promptLen, genLen,
                            repeats, out);
                    double bandwidth = EngineBench.hostCopyBandwidth();
                    EngineBench.printRoofline(model.config(), results, bandwidth, out);
                    if (json != null) {
                        writeAtomically(json, EngineBench.json(new EngineBench.Setup(name, "cpu", Runtime.getRuntime().availableProcessors() + " cores",
                                promptLen, genLen, repeats, model.checkpointBytes(), bandwidth, model.heldBytes()), model.config(), results)
                                .getBytes(StandardCharsets.UTF_8));
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            if (tmp != null) {
                deleteQuietly(tmp);
            }
        }
    }

    private void benchGpu(CudaBackend cuda, ModelConfig config, String name, int[] batches, int promptLen, int genLen, int repeats, Path json,
                          boolean profile) {
        out.printf("model: %s (hidden %d, %d layers, %d experts top-%d, vocab %d, %.1fM params); backend cuda on %s%n", name, config.hiddenSize(),
                config.numHiddenLayers(), config.numExperts(), config.numExpertsPerTok(), config.vocabSize(), config.parameterCount() / 1e6,
                cuda.device().name());
        out.printf("%d-token prompts, %d generated tokens per request%n", promptLen, genLen);
        List<EngineBench.Result> results = EngineBench.run(() -> new CudaRunner(cuda.device(), cuda.weights()), config, batches, promptLen, genLen,
                repeats, out);
        double bandwidth = cuda.copyBandwidth(1L << 30, 10);
        long memory = cuda.memoryUsed();
        EngineBench.printRoofline(config, results, bandwidth, out);
        out.printf("GPU memory in use: %.2f GiB (weights %.2f GiB)%n", memory / (double) (1L << 30), cuda.weights().bytes() / (double) (1L << 30));
        List<KernelProfile.Table> profiles = new ArrayList<>();
        RuntimeException failure = null;
        if (profile) {
            for (EngineBench.Result r : results) {
                try {
                    KernelProfile.Table table = KernelProfileBench.run(cuda, config, r.batch(), promptLen, genLen, bandwidth,
                            1e6 * r.batch() / r.decodeTokensPerSecond());
                    out.print(table.format());
                    profiles.add(table);
                } catch (RuntimeException e) {
                    failure = e; // the timed results are still written below
                    err.println("error: --profile at batch " + r.batch() + " failed: " + e);
                    break;
                }
            }
        }
        if (json != null) {
            writeAtomically(json, EngineBench.json(new EngineBench.Setup(name, "cuda", cuda.device().name(), promptLen, genLen, repeats,
                    cuda.weights().bytes(), bandwidth, memory), config, results, profiles).getBytes(StandardCharsets.UTF_8));
        }
        if (failure != null) {
            throw failure;
        }
    }

    /** The bench presets: small synthetic shapes for the CPU, the real shapes (MODEL.md §1, MODEL-V1.md §2) for the GPU. */
    static ModelConfig preset(String name, boolean gpu) {
        return switch (name) {
            case "demo" -> SyntheticCheckpoint.demoConfig();
            case "mid" -> SyntheticCheckpoint.midConfig();
            case "lite-mid" -> SyntheticCheckpoint.liteMidConfig();
            case "ring-mini-2.0" -> BailingMoeV2Config.ringMini20();
            case "ring-lite" -> BailingMoeConfig.ringLite();
            default -> throw new UsageException("--preset must be demo, mid, lite-mid, ring-mini-2.0 or ring-lite");
        };
    }

    private void kernelTable(Options o) {
        Path csv = Path.of(o.required("csv"));
        double copy = 0;
        if (o.has("copy-gbps")) {
            try {
                copy = Double.parseDouble(o.get("copy-gbps")) * 1e9;
            } catch (NumberFormatException e) {
                throw new UsageException("--copy-gbps must be a number (GB/s), got '" + o.get("copy-gbps") + "'");
            }
            if (!(copy > 0) || Double.isInfinite(copy)) {
                throw new UsageException("--copy-gbps must be > 0, got '" + o.get("copy-gbps") + "'");
            }
        }
        out.print(KernelTable.format(KernelTable.lastStep(KernelTable.read(csv), KernelTable.STEP_END), copy));
    }

    // ---- helpers -----------------------------------------------------------------------------------

    /** Which backend runs ({@link BackendSelector}); today always the CPU, and {@code cuda} fails saying why. */
    private BackendSelector.Choice checkBackend(Options o) {
        BackendSelector.Requested requested = switch (o.get("backend", "auto")) {
            case "auto" -> BackendSelector.Requested.AUTO;
            case "cpu" -> BackendSelector.Requested.CPU;
            case "cuda" -> BackendSelector.Requested.CUDA;
            default -> throw new UsageException("--backend must be auto, cpu or cuda");
        };
        BackendSelector.Choice choice;
        try {
            choice = BackendSelector.select(requested);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--backend cuda: " + e.getMessage(), e);
        }
        if (choice.gpuUnused()) {
            err.println("note: --backend auto runs on the cpu: " + choice.reason());
        }
        return choice;
    }

    private LocalModel openModel(Options o, boolean modelRequired) {
        if (modelRequired && !o.has("model")) {
            throw new UsageException("--model DIR is required");
        }
        return LocalModel.open(modelDir(o));
    }

    private Path modelDir(Options o) {
        if (o.has("model")) {
            return Path.of(o.get("model"));
        }
        Path demo = DemoModel.ensure();
        err.println("note: no --model given, using the demo model in " + demo + " (random weights: its output is meaningless text)");
        return demo;
    }

    static List<Map<String, Object>> readChat(Path file) {
        JsonNode root;
        try {
            root = JsonMapper.builder().build().readTree(Files.readString(file));
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot be read (" + e.getMessage() + ")", e);
        } catch (JacksonException e) {
            throw new IllegalArgumentException(file + ": not valid JSON (" + e.getOriginalMessage() + ")");
        }
        JsonNode messages = root == null ? null : root.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw new IllegalArgumentException(file + ": messages must be a non-empty list of {\"role\", \"content\"} objects");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            if (!m.isObject() || m.get("role") == null || !m.get("role").isString()) {
                throw new IllegalArgumentException(file + ": messages[" + i + "].role must be a string");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> map = JsonMapper.builder().build().convertValue(m, Map.class);
            out.add(map);
        }
        return out;
    }

    static int[] parseIds(String s, String option) {
        if (s.isBlank()) {
            throw new UsageException(option + " needs comma-separated token ids, e.g. 1,2,3");
        }
        String[] parts = s.split(",");
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new UsageException(option + ": '" + parts[i].trim() + "' is not a token id");
            }
            if (ids[i] < 0) {
                throw new UsageException(option + ": token ids are >= 0, got " + ids[i]);
            }
        }
        return ids;
    }

    static String join(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < ids.length; i++) {
            if (i > 0) {
                sb.append(',');
            }
            sb.append(ids[i]);
        }
        return sb.toString();
    }

    /** Writes next to the target and renames, so a failed run never leaves a truncated file behind. */
    static void writeAtomically(Path target, byte[] bytes) {
        try {
            Path parent = target.toAbsolutePath().getParent();
            Files.createDirectories(parent);
            Path tmp = Files.createTempFile(parent, "." + target.getFileName(), ".partial");
            try (OutputStream os = Files.newOutputStream(tmp)) {
                os.write(bytes);
            }
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(target + ": cannot be written (" + e.getMessage() + ")", e);
        }
    }

    /**
     * Writes the synthetic checkpoint of preset {@code name} (seed 7, the benches' weights) into {@code model/} of a new
     * temporary folder and returns that folder; the caller deletes it ({@link #deleteQuietly}).
     */
    static Path writeSyntheticPreset(String name, ModelConfig preset, PrintStream err) throws IOException {
        Path tmp = Files.createTempDirectory("ring-serve-" + name + "-");
        err.printf(java.util.Locale.ROOT, "writing synthetic %s checkpoint (%.1fM params)...%n", name, preset.parameterCount() / 1e6);
        SyntheticCheckpoint.write(tmp.resolve("model"), preset, 7, 0);
        return tmp;
    }

    static void deleteQuietly(Path root) {
        try {
            SyntheticCheckpoint.deleteTree(root);
        } catch (IOException ignored) {
            // a temp folder left behind is harmless
        }
    }

    static String vectorNote() {
        return Dot.VECTORIZED ? "SIMD" : "scalar (start the JVM with --add-modules jdk.incubator.vector for SIMD)";
    }
}
