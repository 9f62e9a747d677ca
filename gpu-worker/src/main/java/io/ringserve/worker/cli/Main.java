package io.ringserve.worker.cli;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.config.ConfigException;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.model.template.TemplateException;
import io.ringserve.model.tokenizer.Tokenizer;
import io.ringserve.worker.demo.SyntheticCheckpoint;
import io.ringserve.worker.engine.Generator;
import io.ringserve.worker.engine.LocalModel;
import io.ringserve.worker.reference.Dot;
import io.ringserve.worker.reference.KvCache;
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
 * {@code tokenize}, {@code detokenize}, {@code demo-model}, {@code bench}. Usage errors exit 2; a file or model
 * that cannot be used exits 1 with one line naming it.
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
              bench      [--model DIR | --preset demo|mid|lite-mid] [--prompt-tokens N] [--decode-tokens N] [--concurrency 1,4,16]
                         batch-1 prefill/decode tokens/s, or aggregate tokens/s of N concurrent streams
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
            case "bench" -> Set.of("model", "preset", "prompt-tokens", "decode-tokens", "backend", "concurrency");
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
        checkBackend(o);
        try (LocalModel model = openModel(o, true)) {
            KvCache cache = model.forward().newCache();
            float[] logits = model.forward().forward(cache, tokens, true, null); // (T, V)
            ByteBuffer buf = ByteBuffer.allocate(logits.length * 4).order(ByteOrder.LITTLE_ENDIAN);
            buf.asFloatBuffer().put(logits);
            writeAtomically(target, buf.array());
            err.println("wrote " + tokens.length + " x " + model.config().vocabSize() + " float32 logits to " + target);
        }
    }

    private void generate(Options o) {
        checkBackend(o);
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
            Generator.Generation g = Generator.generate(model.forward(), prompt, sampling, stopping, null);
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
        int promptTokens = o.intValue("prompt-tokens", 128);
        int decodeTokens = o.intValue("decode-tokens", 32);
        Path dir;
        Path tmp = null;
        if (o.has("preset")) {
            ModelConfig preset = switch (o.get("preset")) {
                case "demo" -> SyntheticCheckpoint.demoConfig();
                case "mid" -> SyntheticCheckpoint.midConfig();
                case "lite-mid" -> SyntheticCheckpoint.liteMidConfig();
                case "ring-lite" -> throw new UsageException(String.format("--preset ring-lite is the full Ring-lite shape (%.1f GB of bf16 weights),"
                        + " a GPU benchmark; the CPU bench takes demo, mid or lite-mid", BailingMoeConfig.ringLite().parameterCount() * 2 / 1e9));
                default -> throw new UsageException("--preset must be demo, mid or lite-mid");
            };
            try {
                tmp = Files.createTempDirectory("ring-serve-bench-");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            dir = tmp.resolve("model");
            err.println("writing synthetic " + o.get("preset") + " checkpoint (" + String.format("%.1f", preset.parameterCount() / 1e6) + "M params)...");
            SyntheticCheckpoint.write(dir, preset, 7, 0);
        } else {
            dir = modelDir(o);
        }
        try (LocalModel model = LocalModel.open(dir)) {
            if (o.has("concurrency")) {
                Bench.concurrent(model, parseIds(o.get("concurrency"), "--concurrency"), promptTokens, decodeTokens, out);
            } else {
                Bench.run(model, promptTokens, decodeTokens, out);
            }
        } finally {
            if (tmp != null) {
                deleteQuietly(tmp);
            }
        }
    }

    // ---- helpers -----------------------------------------------------------------------------------

    private void checkBackend(Options o) {
        String backend = o.get("backend", "auto");
        switch (backend) {
            case "auto", "cpu" -> {
            }
            case "cuda" -> throw new IllegalArgumentException("--backend cuda: this build has no CUDA backend; use --backend cpu");
            default -> throw new UsageException("--backend must be auto, cpu or cuda");
        }
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

    private static void deleteQuietly(Path root) {
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
