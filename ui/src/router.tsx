// Hash routing: the app is one local page, and the shell's `syncdesk://navigate` event maps
// straight onto a hash. No history server, no dependency.
import { useEffect, useState, type AnchorHTMLAttributes, type ReactNode } from "react";

export type Route =
  | { name: "dashboard" }
  | { name: "connections"; id?: string }
  | { name: "jobNew" }
  | { name: "job"; id: string; tab: "executions" | "failed" | "settings" }
  | { name: "execution"; id: string }
  | { name: "alerts" }
  | { name: "audit" }
  | { name: "sandbox" }
  | { name: "settings" }
  | { name: "notFound"; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "").replace(/\?.*$/, "") || "/";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { name: "dashboard" };
  switch (parts[0]) {
    case "connections":
      return parts[1] ? { name: "connections", id: parts[1] } : { name: "connections" };
    case "jobs":
      if (parts[1] === "new") return { name: "jobNew" };
      if (parts[1]) {
        const t = parts[2];
        const tab = t === "failed" || t === "settings" ? t : "executions";
        return { name: "job", id: parts[1], tab };
      }
      return { name: "dashboard" };
    case "executions":
      if (parts[1]) return { name: "execution", id: parts[1] };
      break;
    case "alerts":
      return { name: "alerts" };
    case "audit":
      return { name: "audit" };
    case "sandbox":
      return { name: "sandbox" };
    case "settings":
      return { name: "settings" };
  }
  return { name: "notFound", path };
}

export const paths = {
  dashboard: () => "/",
  connections: () => "/connections",
  connection: (id: string) => `/connections/${encodeURIComponent(id)}`,
  jobNew: () => "/jobs/new",
  job: (id: string, tab: "executions" | "failed" | "settings" = "executions") =>
    tab === "executions" ? `/jobs/${encodeURIComponent(id)}` : `/jobs/${encodeURIComponent(id)}/${tab}`,
  execution: (id: string) => `/executions/${encodeURIComponent(id)}`,
  alerts: () => "/alerts",
  audit: () => "/audit",
  sandbox: () => "/sandbox",
  settings: () => "/settings",
};

export function navigate(path: string): void {
  if (window.location.hash !== `#${path}`) window.location.hash = path;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

export function Link({ to, children, ...rest }: { to: string; children: ReactNode } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  return (
    <a href={`#${to}`} {...rest}>
      {children}
    </a>
  );
}

/** Query parameters written after `?` inside the hash (`#/jobs/1/settings?focus=mappings`). */
export function hashQuery(): URLSearchParams {
  const h = window.location.hash;
  const i = h.indexOf("?");
  return new URLSearchParams(i >= 0 ? h.slice(i + 1) : "");
}
