import { describe, expect, test } from "vitest";
import { formToNewJob, newJobForm, parseDefault, parseDuration, transformStepError, validateJobForm, type JobForm } from "./jobForm";

function valid(): JobForm {
  return {
    ...newJobForm("c0sandbox"),
    name: "Customers",
    naturalKeys: "email",
    mappings: [
      { source: "email", target: "email", transform: "trim|lowercase", defaultText: "", required: true, type: "string", optional: false },
      { source: "created_at", target: "created_at", transform: "date:%d/%m/%Y", defaultText: "1970-01-01", required: false, type: "", optional: false },
    ],
  };
}

describe("job form validation", () => {
  test("a new job defaults to incremental pull, manual schedule, retries on (R-I5)", () => {
    const f = newJobForm();
    expect(f.mode).toBe("incremental");
    expect(f.direction).toBe("pull");
    expect(f.scheduleKind).toBe("manual");
    expect(f.retryOnFailure).toBe(true);
    expect(f.maxRetries).toBe("3");
  });

  test("a valid form has no errors and converts to NewJobDto", () => {
    expect(validateJobForm(valid())).toEqual({});
    const dto = formToNewJob({ ...valid(), scheduleKind: "interval", scheduleValue: "15m", timeout: "2h" });
    expect(dto).toMatchObject({ name: "Customers", connection: "c0sandbox", mode: "incremental", schedule: "every 15m" });
    expect(dto.settings?.timeout_secs).toBe(7200);
    expect(dto.settings?.mappings[0]).toEqual({
      source: "email",
      target: "email",
      transform: "trim|lowercase",
      default: null,
      required: true,
      type: "string",
      optional: false,
    });
    expect(dto.settings?.mappings[1].default).toBe("1970-01-01");
  });

  test("each bad field gets its own message", () => {
    const e = validateJobForm({
      ...valid(),
      name: " ",
      connection: "",
      batchSize: "0",
      timeout: "soon",
      maxRetries: "21",
      scheduleKind: "interval",
      scheduleValue: "30s",
    });
    expect(Object.keys(e).sort()).toEqual(["batch_size", "connection", "max_retries", "name", "schedule", "timeout"]);
    expect(e.schedule).toMatch(/shorter than 1m/);
    expect(e.batch_size).toMatch(/1 and 1000/);
  });

  test("mappings: required source/target, duplicates, transforms, natural keys", () => {
    const f = valid();
    f.mappings.push({ source: "", target: "email", transform: "frobnicate", defaultText: "", required: false, type: "", optional: false });
    f.naturalKeys = "email, sku";
    const e = validateJobForm(f);
    expect(e["mappings[2].source"]).toBe("Source field is required.");
    expect(e["mappings[2].target"]).toBe("'email' is mapped twice.");
    expect(e["mappings[2].transform"]).toBe("Unknown transform 'frobnicate'.");
    expect(e.natural_keys).toBe("Not the target of any mapping: sku.");
  });

  test("no mappings, or duplicate detection without keys, is refused", () => {
    expect(validateJobForm({ ...valid(), mappings: [], naturalKeys: "" }).mappings).toMatch(/at least one field mapping/);
    expect(validateJobForm({ ...valid(), naturalKeys: "" }).natural_keys).toMatch(/needs at least one natural key/);
    expect(validateJobForm({ ...valid(), naturalKeys: "", duplicateDetection: false }).natural_keys).toBeUndefined();
  });

  test("cron needs 5 or 6 fields", () => {
    expect(validateJobForm({ ...valid(), scheduleKind: "cron", scheduleValue: "0 * *" }).schedule).toMatch(/5 or 6 fields/);
    expect(validateJobForm({ ...valid(), scheduleKind: "cron", scheduleValue: "0 * * * *" }).schedule).toBeUndefined();
  });

  test("helpers: durations, defaults, transform steps", () => {
    expect(parseDuration("90s")).toBe(90);
    expect(parseDuration("15m")).toBe(900);
    expect(parseDuration("1d")).toBe(86400);
    expect(parseDuration("1 week")).toBeNull();
    expect(parseDefault("0")).toBe(0);
    expect(parseDefault("true")).toBe(true);
    expect(parseDefault("unknown")).toBe("unknown");
    expect(parseDefault("")).toBeNull();
    expect(transformStepError("enum:paid=settled,open=due")).toBeNull();
    expect(transformStepError("enum:paid")).toMatch(/from=to/);
    expect(transformStepError("reference:customers")).toBeNull();
    expect(transformStepError("reference:")).toMatch(/unknown transform/);
  });
});
