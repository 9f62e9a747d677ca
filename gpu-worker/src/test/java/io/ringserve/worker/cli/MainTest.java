package io.ringserve.worker.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.ringserve.worker.reference.Golden;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command-line contract, run in-process exactly as {@code java -jar gpu-worker.jar ...} would. */
class MainTest {
    record Result(int exit, String out, String err) {
        String firstLine() {
            return out.lines().findFirst().orElse("");
        }
    }

    static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = new Main(new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8)).run(args);
        return new Result(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    static final Path TINY = Golden.dir("tiny-ring-a");
    static final Path TINY_LITE = Golden.dir("tiny-ring-lite-a");

    static String csv(int[] ids) {
        return Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
    }

    @Test
    void logitsWritesFloat32TimesVocabMatchingTheReference(@TempDir Path tmp) throws IOException {
        Golden.Prompt text = Golden.prompts("tiny-ring-a").stream().filter(p -> p.name().equals("text")).findFirst().orElseThrow();
        Path file = tmp.resolve("logits.f32");
        Result r = run("logits", "--model", TINY.toString(), "--tokens", csv(text.inputIds()), "--out", file.toString(), "--backend", "cpu");
        assertEquals(0, r.exit(), r.err());
        float[] logits = Golden.floats(file);
        assertEquals(text.inputIds().length * 1664, logits.length);
        assertTrue(Golden.relL2(logits, text.logits()) <= 1e-4);
    }

    @Test
    void greedyGenerateFromTokensPrintsTheGoldenIdsThenText() {
        for (Golden.Prompt p : Golden.prompts("tiny-ring-a")) {
            Result r = run("generate", "--model", TINY.toString(), "--tokens", csv(p.inputIds()), "--max-tokens", "24", "--temperature", "0");
            assertEquals(0, r.exit(), r.err());
            assertEquals(csv(p.greedy24()), r.firstLine());
            assertTrue(r.out().lines().count() >= 2, "text follows the ids");
        }
    }

    @Test
    void aV1CheckpointGeneratesItsGoldenIdsAndLogits(@TempDir Path tmp) throws IOException {
        for (Golden.Prompt p : Golden.prompts("tiny-ring-lite-a")) {
            Result r = run("generate", "--model", TINY_LITE.toString(), "--tokens", csv(p.inputIds()), "--max-tokens", "24", "--temperature", "0");
            assertEquals(0, r.exit(), r.err());
            assertEquals(csv(p.greedy24()), r.firstLine(), p.name());
        }
        // the fixture's prompts as text: the tokenizer gives the same ids, the model the same continuation
        Map<String, String> texts = Map.of("chat", "<role>SYSTEM</role>Be brief.<role>HUMAN</role>中文问题？", "text", "Ωμέγα ελληνικά");
        for (Golden.Prompt p : Golden.prompts("tiny-ring-lite-a")) {
            Result r = run("generate", "--model", TINY_LITE.toString(), "--prompt", texts.get(p.name()), "--max-tokens", "24");
            assertEquals(0, r.exit(), r.err());
            assertTrue(r.err().contains("prompt_tokens=" + p.inputIds().length), r.err());
            assertEquals(csv(p.greedy24()), r.firstLine(), p.name());
        }

        Golden.Prompt text = Golden.prompts("tiny-ring-lite-a").getLast();
        Path file = tmp.resolve("logits.f32");
        Result r = run("logits", "--model", TINY_LITE.toString(), "--tokens", csv(text.inputIds()), "--out", file.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(Golden.relL2(Golden.floats(file), text.logits()) <= 1e-4);
    }

    @Test
    void aPytorchOnlyCheckpointExitsOneSayingHowToConvert(@TempDir Path tmp) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("m"));
        for (String f : new String[] {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
            Files.copy(TINY_LITE.resolve(f), dir.resolve(f));
        }
        Files.write(dir.resolve("pytorch_model.bin"), new byte[16]);
        Result r = run("generate", "--model", dir.toString(), "--tokens", "1,2");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("only PyTorch weights (pytorch_model.bin)") && r.err().contains("safe_serialization=True"), r.err());
        assertEquals(1, r.err().lines().count(), "one line: " + r.err());
    }

    @Test
    void chatFileIsRenderedWithTheModelsTemplate(@TempDir Path tmp) throws IOException {
        Golden.Prompt chat = Golden.prompts("tiny-ring-a").stream().filter(p -> p.name().equals("chat")).findFirst().orElseThrow();
        Path file = tmp.resolve("chat.json");
        Files.writeString(file, """
                {"messages": [{"role": "system", "content": "You are Ring, an assistant created by inclusionAI"},
                              {"role": "user", "content": "Give me a short introduction to large language models."}]}""");
        Result r = run("generate", "--model", TINY.toString(), "--chat", file.toString(), "--max-tokens", "24");
        assertEquals(0, r.exit(), r.err());
        assertEquals(csv(chat.greedy24()), r.firstLine());
        assertTrue(r.err().contains("prompt_tokens=" + chat.inputIds().length), r.err());
    }

    @Test
    void seededSamplingIsReproducible() {
        String[] args = {"generate", "--model", TINY.toString(), "--prompt", "Hello world", "--max-tokens", "12", "--temperature", "1.0", "--seed", "7"};
        Result a = run(args);
        Result b = run(args);
        assertEquals(0, a.exit(), a.err());
        assertEquals(a.firstLine(), b.firstLine());
        Result c = run("generate", "--model", TINY.toString(), "--prompt", "Hello world", "--max-tokens", "12", "--temperature", "1.0", "--seed", "8");
        assertFalse(a.firstLine().equals(c.firstLine()), "another seed gives other tokens");
    }

    @Test
    void tokenizeAndDetokenizeRoundTrip() {
        Result ids = run("tokenize", "--model", TINY.toString(), "--text", "Hello, world!");
        assertEquals(0, ids.exit(), ids.err());
        assertEquals("39,1472,78,11,280,265,472,0", ids.firstLine());
        Result text = run("detokenize", "--model", TINY.toString(), "--tokens", ids.firstLine());
        assertEquals("Hello, world!", text.firstLine());
    }

    @Test
    void usageErrorsExitTwo() {
        Result unknown = run("frobnicate");
        assertEquals(2, unknown.exit());
        assertTrue(unknown.err().contains("unknown command 'frobnicate'"));
        assertTrue(unknown.err().contains("usage:"));
        assertEquals(2, run().exit());
        Result badOption = run("generate", "--model", TINY.toString(), "--tokens", "1,2", "--colour", "red");
        assertEquals(2, badOption.exit());
        assertTrue(badOption.err().contains("unknown option --colour"));
        Result badIds = run("logits", "--model", TINY.toString(), "--tokens", "1,x", "--out", "/tmp/x");
        assertEquals(2, badIds.exit());
        assertTrue(badIds.err().contains("'x' is not a token id"));
        assertEquals(2, run("logits", "--model", TINY.toString(), "--tokens", "1").exit(), "--out is required");
        assertEquals(2, run("generate", "--model", TINY.toString(), "--tokens", "1", "--max-tokens", "many").exit());
        Result gpuPreset = run("bench", "--preset", "ring-lite");
        assertEquals(2, gpuPreset.exit());
        assertTrue(gpuPreset.err().contains("--preset ring-lite is the full Ring-lite shape (33.6 GB of bf16 weights)"), gpuPreset.err());
        Result miniOnCpu = run("bench", "--preset", "ring-mini-2.0", "--dummy-weights", "--backend", "cpu");
        assertEquals(2, miniOnCpu.exit());
        assertTrue(miniOnCpu.err().contains("--preset ring-mini-2.0 is the full Ring-mini-2.0 shape"), miniOnCpu.err());
        Result dummyWithoutPreset = run("bench", "--model", TINY.toString(), "--dummy-weights");
        assertEquals(2, dummyWithoutPreset.exit());
        assertTrue(dummyWithoutPreset.err().contains("--dummy-weights needs --preset"), dummyWithoutPreset.err());
        Result profileOnCpu = run("bench", "--preset", "demo", "--profile", "--backend", "cpu");
        assertEquals(2, profileOnCpu.exit());
        assertTrue(profileOnCpu.err().contains("error: --profile times the CUDA kernels of a decode step: it needs the GPU"), profileOnCpu.err());
        assertTrue(profileOnCpu.err().contains("usage:") && profileOnCpu.err().contains("--profile (GPU only)"), profileOnCpu.err());
        assertEquals("", profileOnCpu.out(), "nothing was benchmarked");
    }

    @Test
    void cudaBackendFailsInOneLineSayingWhy() {
        org.junit.jupiter.api.Assumptions.assumeFalse(io.ringserve.worker.cuda.CudaProbe.probe().ready(), "this machine has a usable GPU");
        Result cuda = run("generate", "--model", TINY.toString(), "--tokens", "1,2", "--backend", "cuda");
        assertEquals(1, cuda.exit());
        assertTrue(cuda.err().startsWith("error: --backend cuda: cuda was requested"), cuda.err());
        assertEquals(1, cuda.err().lines().count(), "one line: " + cuda.err());
        Result bench = run("bench", "--preset", "demo", "--backend", "cuda");
        assertEquals(1, bench.exit(), "bench checks the backend too");
        Result badBackend = run("generate", "--model", TINY.toString(), "--tokens", "1,2", "--backend", "tpu");
        assertEquals(2, badBackend.exit());
    }

    @io.ringserve.worker.cuda.GpuTest
    void benchProfileOnTheGpuPrintsAndWritesAKernelTablePerBatchSize(@TempDir Path tmp) throws IOException {
        Path json = tmp.resolve("bench.json");
        Result r = run("bench", "--model", TINY.toString(), "--backend", "cuda", "--batch", "1,3", "--prompt-len", "8", "--gen-len", "8",
                "--repeats", "1", "--profile", "--json", json.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("kernel profile at batch 1, ") && r.out().contains("kernel profile at batch 3, "), r.out());
        assertTrue(r.out().contains("moe_gate_up_silu") && r.out().contains("graph replay step (timed runs"), r.out());
        tools.jackson.databind.JsonNode root = tools.jackson.databind.json.JsonMapper.builder().build().readTree(Files.readString(json));
        assertEquals(2, root.get("profiles").size());
        assertEquals(3, root.get("profiles").get(1).get("batch").asInt());
        assertTrue(root.get("profiles").get(0).get("step_us").asDouble() > 0);
    }

    @Test
    void brokenModelDirectoriesExitOneNamingTheProblem(@TempDir Path tmp) throws IOException {
        Path copy = copyOf(TINY, tmp.resolve("m"));
        // a config that asks for a layer the checkpoint does not have
        String config = Files.readString(copy.resolve("config.json")).replace("\"num_hidden_layers\": 3", "\"num_hidden_layers\": 4");
        Files.writeString(copy.resolve("config.json"), config);
        Result missing = run("logits", "--model", copy.toString(), "--tokens", "1,2", "--out", tmp.resolve("o").toString());
        assertEquals(1, missing.exit());
        assertTrue(missing.err().contains("model.layers.3."), missing.err());
        assertEquals(1, missing.err().lines().count(), "one line: " + missing.err());
        assertFalse(Files.exists(tmp.resolve("o")), "no output file on failure");

        Files.writeString(copy.resolve("config.json"), config.replace("\"num_hidden_layers\": 4", "\"num_hidden_layers\": 3")
                .replace("\"vocab_size\": 1664", "\"vocab_size\": 1700"));
        Result shape = run("logits", "--model", copy.toString(), "--tokens", "1,2", "--out", tmp.resolve("o").toString());
        assertEquals(1, shape.exit());
        assertTrue(shape.err().contains("model.word_embeddings.weight"), shape.err());

        Result outOfVocab = run("logits", "--model", TINY.toString(), "--tokens", "1,99999", "--out", tmp.resolve("o").toString());
        assertEquals(1, outOfVocab.exit());
        assertTrue(outOfVocab.err().contains("token id 99999 is outside the vocabulary"), outOfVocab.err());
    }

    @Test
    void demoModelIsWrittenAndGeneratesWithoutOverwritingAnything(@TempDir Path tmp) throws IOException {
        Path demo = tmp.resolve("demo");
        Result w = run("demo-model", "--out", demo.toString(), "--seed", "1");
        assertEquals(0, w.exit(), w.err());
        assertTrue(w.err().contains("meaningless"));
        for (String f : new String[] {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
            assertTrue(Files.exists(demo.resolve(f)), f);
        }
        Result g = run("generate", "--model", demo.toString(), "--prompt", "Hello", "--max-tokens", "5", "--ignore-eos", "true");
        assertEquals(0, g.exit(), g.err());
        assertEquals(5, g.firstLine().split(",").length);

        long before = Files.size(demo.resolve("model.safetensors"));
        Result again = run("demo-model", "--out", demo.toString());
        assertEquals(1, again.exit());
        assertTrue(again.err().contains("not empty"), again.err());
        assertEquals(before, Files.size(demo.resolve("model.safetensors")));
    }

    static Path copyOf(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        try (Stream<Path> files = Files.list(from)) {
            for (Path f : files.toList()) {
                Files.copy(f, to.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        return to;
    }
}
