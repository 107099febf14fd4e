import { QueryClient, QueryObserver } from "@tanstack/react-query";
import { emit } from "@tauri-apps/api/event";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, test, vi } from "vitest";
import { parseRoute } from "../router";
import { qk } from "./client";
import { keysFor, routeFor, settles, subscribe } from "./events";

describe("shell events", () => {
  test("progress of a running execution invalidates that execution and its job's history", () => {
    const keys = keysFor({ type: "execution_progress", execution_id: "e1", job_id: "j1", counts: { processed: 1, created: 1, updated: 0, skipped: 0, failed: 0 }, batch: "page 2" });
    expect(keys).toContainEqual(qk.execution("e1"));
    expect(keys).toContainEqual(qk.executions("j1"));
  });

  test("a finished run also refreshes failed records, health and alerts", () => {
    const keys = keysFor({ type: "execution_finished", execution_id: "e1", job_id: "j1", job_name: "J", status: "failed", counts: { processed: 0, created: 0, updated: 0, skipped: 0, failed: 0 }, note: null });
    expect(keys).toContainEqual(qk.failedRecords("j1"));
    expect(keys).toContainEqual(qk.health);
    expect(keys).toContainEqual(qk.alerts);
  });

  test("navigate requests map to routes; unknown views are ignored", () => {
    expect(parseRoute(`#${routeFor({ view: "execution", id: "e1" })}`)).toEqual({ name: "execution", id: "e1" });
    expect(parseRoute(`#${routeFor({ view: "connection", id: "c1" })}`)).toEqual({ name: "connections", id: "c1" });
    expect(parseRoute(`#${routeFor({ view: "job", id: "j1" })}`)).toEqual({ name: "job", id: "j1", tab: "executions" });
    expect(routeFor({ view: "settings", id: null })).toBeNull();
    expect(routeFor({ view: "execution", id: null })).toBeNull();
  });

  test("subscribe: an event invalidates queries and a navigate event moves the app", async () => {
    mockIPC(() => null, { shouldMockEvents: true });
    const qc = new QueryClient();
    const spy = vi.spyOn(qc, "invalidateQueries");
    const go = vi.fn();
    const off = await subscribe(qc, go);
    await emit("syncdesk://event", { type: "dead_lettered", job_id: "j1", record_id: "cus_1" });
    await emit("syncdesk://navigate", { view: "execution", id: "e42" });
    expect(spy).toHaveBeenCalledWith({ queryKey: qk.failedRecords("j1") });
    expect(go).toHaveBeenCalledWith("/executions/e42");
    off();
  });

  test("subscribe: a first read in flight when a run finishes is read again, not kept", async () => {
    mockIPC(() => null, { shouldMockEvents: true });
    const qc = new QueryClient();
    const off = await subscribe(qc, vi.fn());
    // The first read starts mid-run and answers (late) with the mid-run state.
    let answerFirst: (v: string) => void = () => {};
    let reads = 0;
    const queryFn = () => {
      reads += 1;
      return reads === 1 ? new Promise<string>((r) => (answerFirst = r)) : Promise.resolve("finished");
    };
    const observer = new QueryObserver(qc, { queryKey: qk.execution("e1"), queryFn });
    const unsubscribe = observer.subscribe(() => {});
    await vi.waitFor(() => expect(reads).toBe(1));
    await emit("syncdesk://event", { type: "execution_finished", execution_id: "e1", job_id: "j1", job_name: "J", status: "completed", counts: { processed: 1, created: 1, updated: 0, skipped: 0, failed: 0 }, note: null });
    answerFirst("running");
    await vi.waitFor(() => expect(qc.getQueryData(qk.execution("e1"))).toBe("finished"));
    expect(reads).toBe(2);
    unsubscribe();
    off();
  });

  test("progress events do not cancel reads in flight", () => {
    expect(settles({ type: "execution_progress", execution_id: "e1", job_id: "j1", counts: { processed: 1, created: 1, updated: 0, skipped: 0, failed: 0 }, batch: "page 2" })).toBe(false);
    expect(settles({ type: "dead_lettered", job_id: "j1", record_id: "cus_1" })).toBe(true);
  });
});

describe("routes", () => {
  test("hash routes parse, including a query after the path", () => {
    expect(parseRoute("")).toEqual({ name: "dashboard" });
    expect(parseRoute("#/jobs/j1/failed")).toEqual({ name: "job", id: "j1", tab: "failed" });
    expect(parseRoute("#/jobs/j1/settings?focus=mappings")).toEqual({ name: "job", id: "j1", tab: "settings" });
    expect(parseRoute("#/jobs/new")).toEqual({ name: "jobNew" });
    expect(parseRoute("#/connections/c1?reauth=1")).toEqual({ name: "connections", id: "c1" });
    expect(parseRoute("#/nope")).toEqual({ name: "notFound", path: "/nope" });
  });
});
