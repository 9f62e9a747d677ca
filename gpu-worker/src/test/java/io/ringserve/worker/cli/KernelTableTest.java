package io.ringserve.worker.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kernel-table} on CSVs written the way Nsight Compute writes them (quoted fields, thousands separators). */
class KernelTableTest {
    private static final String HEADER = "\"ID\",\"Process ID\",\"Process Name\",\"Host Name\",\"Kernel Name\",\"Context\",\"Stream\",\"Block Size\","
            + "\"Grid Size\",\"Device\",\"CC\",\"Section Name\",\"Metric Name\",\"Metric Unit\",\"Metric Value\"";

    /** Two rows (time, bytes) of one profiled launch. */
    private static String launch(int id, String kernel, String grid, String nanos, String bytes) {
        String head = "\"" + id + "\",\"77\",\"java\",\"127.0.0.1\",\"" + kernel + "\",\"1\",\"13\",\"(256, 1, 1)\",\"" + grid
                + "\",\"0\",\"9.0\",\"Command line profiler metrics\",";
        return head + "\"dram__bytes_read.sum\",\"byte\",\"" + bytes + "\"\n" + head + "\"gpu__time_duration.sum\",\"ns\",\"" + nanos + "\"\n";
    }

    private static Path csv(Path dir, String body) throws IOException {
        Path f = dir.resolve("ncu.csv");
        Files.writeString(f, "==PROF== Connected to process 77\n" + HEADER + "\n" + body + "==PROF== Disconnected from process 77\n", StandardCharsets.UTF_8);
        return f;
    }

    @Test
    void theLastStepIsGroupedByKernelAndGrid(@TempDir Path tmp) throws IOException {
        String body = launch(0, "fill_random_bf16", "(65535, 1, 1)", "678,368", "19,712")
                + launch(1, "sample_tokens", "(1, 1, 1)", "6,000", "100")         // end of a prefill: not counted
                + launch(2, "gemv_bf16_1", "(384, 1, 1)", "8,000", "12,000,000")  // step 1
                + launch(3, "sample_tokens", "(1, 1, 1)", "6,200", "100")
                + launch(4, "rmsnorm(float*, int)", "(1, 1, 1)", "3,000", "8,192") // step 2, the last
                + launch(5, "gemv_bf16_1", "(384, 1, 1)", "7,000", "12,000,000")
                + launch(6, "gemv_bf16_1", "(32, 1, 1)", "4,500", "1,000,000")
                + launch(7, "gemv_bf16_1", "(384, 1, 1)", "9,000", "12,000,000")
                + launch(8, "sample_tokens", "(1, 1, 1)", "6,300", "50");
        List<KernelTable.Row> rows = KernelTable.lastStep(KernelTable.read(csv(tmp, body)), KernelTable.STEP_END);
        assertEquals(List.of(new KernelTable.Row("rmsnorm", "(1, 1, 1)", 1, 3000, 8192),
                new KernelTable.Row("gemv_bf16_1", "(384, 1, 1)", 2, 16000, 24e6),
                new KernelTable.Row("gemv_bf16_1", "(32, 1, 1)", 1, 4500, 1e6),
                new KernelTable.Row("sample_tokens", "(1, 1, 1)", 1, 6300, 50)), rows);

        MainTest.Result r = MainTest.run("kernel-table", "--csv", tmp.resolve("ncu.csv").toString(), "--copy-gbps", "3000");
        assertEquals(0, r.exit(), r.err());
        String[] lines = r.out().split("\n");
        assertEquals(6, lines.length, r.out()); // header, four rows, the step
        assertTrue(lines[2].matches("gemv_bf16_1\\s+\\(384,1,1\\)\\s+2\\s+16\\.0\\s+8\\.00\\s+24,000,000\\s+1500\\s+50\\.0 %"), lines[2]);
        assertTrue(lines[5].matches("step\\s+5\\s+29\\.8\\s+5\\.96\\s+25,008,242\\s+839\\s+28\\.0 %"), lines[5]);
    }

    @Test
    void aProfileWithoutTwoStepEndsSaysWhatIsMissing(@TempDir Path tmp) throws IOException {
        Path f = csv(tmp, launch(0, "gemv_bf16_1", "(384, 1, 1)", "8,000", "1") + launch(1, "sample_tokens", "(1, 1, 1)", "6,000", "1"));
        MainTest.Result r = MainTest.run("kernel-table", "--csv", f.toString());
        assertEquals(1, r.exit());
        assertEquals("error: the profile holds one launch of sample_tokens: a decode step is the launches between two of them (profile at least two"
                + " decode steps)", r.err().strip());
    }

    @Test
    void badFilesAndOptionsNameTheirProblem(@TempDir Path tmp) throws IOException {
        MainTest.Result missing = MainTest.run("kernel-table", "--csv", tmp.resolve("none.csv").toString());
        assertEquals(1, missing.exit());
        assertTrue(missing.err().startsWith("error: " + tmp.resolve("none.csv")), missing.err());

        Path notNcu = tmp.resolve("other.csv");
        Files.writeString(notNcu, "a,b\n1,2\n");
        MainTest.Result other = MainTest.run("kernel-table", "--csv", notNcu.toString());
        assertEquals(1, other.exit());
        assertEquals("error: " + notNcu + ": no ncu CSV header (a line starting with \"ID\"); run ncu with --csv", other.err().strip());

        Path noTime = tmp.resolve("bytes-only.csv");
        Files.writeString(noTime, HEADER + "\n\"0\",\"77\",\"java\",\"h\",\"k\",\"1\",\"13\",\"(1, 1, 1)\",\"(1, 1, 1)\",\"0\",\"9.0\",\"s\",\"dram__bytes_read.sum\",\"byte\",\"5\"\n");
        MainTest.Result bytesOnly = MainTest.run("kernel-table", "--csv", noTime.toString());
        assertEquals(1, bytesOnly.exit());
        assertTrue(bytesOnly.err().contains("launch 0 has no gpu__time_duration.sum"), bytesOnly.err());

        MainTest.Result badCopy = MainTest.run("kernel-table", "--csv", noTime.toString(), "--copy-gbps", "fast");
        assertEquals(2, badCopy.exit());
        assertTrue(badCopy.err().startsWith("error: --copy-gbps must be a number (GB/s), got 'fast'"), badCopy.err());
    }

    @Test
    void quotedFieldsKeepTheirCommasAndQuotes() {
        assertEquals(List.of("1", "a, b", "say \"hi\"", ""), KernelTable.fields("\"1\",\"a, b\",\"say \"\"hi\"\"\","));
    }
}
