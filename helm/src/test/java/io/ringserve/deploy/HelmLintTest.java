package io.ringserve.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import com.marcnuri.helm.LintResult;
import org.junit.jupiter.api.Test;

/** {@code helm lint --strict}: templates render, YAML is well formed, values match values.schema.json. */
class HelmLintTest {

    @Test
    void defaultValuesLintStrict() {
        LintResult result = Charts.lintStrict();
        assertThat(result.isFailed()).as(String.join("\n", result.getMessages())).isFalse();
    }

    @Test
    void cpuValuesLintStrict() {
        LintResult result = Charts.lintStrict(Charts.cpuValues(), "cpu");
        assertThat(result.isFailed()).as(String.join("\n", result.getMessages())).isFalse();
    }
}
