// One-click demo jobs for the built-in sandbox's data (docs/sandbox.md "Data").
import type { JobForm, MappingRow } from "./jobForm";
import { newJobForm } from "./jobForm";

const m = (source: string, target: string, extra: Partial<MappingRow> = {}): MappingRow => ({
  source,
  target,
  transform: "",
  defaultText: "",
  required: false,
  type: "",
  optional: false,
  ...extra,
});

export function sandboxCustomersJob(connectionId: string): JobForm {
  return {
    ...newJobForm(connectionId),
    name: "Sandbox customers",
    entity: "customers",
    naturalKeys: "email",
    mappings: [
      m("name", "name", { required: true, type: "string" }),
      m("email", "email", { required: true, transform: "email", type: "string" }),
      m("phone", "phone", { type: "string", optional: true }),
      m("created_at", "created_at", { transform: "date" }),
      m("address.city", "city", { optional: true }),
    ],
  };
}

export function sandboxInvoicesJob(connectionId: string): JobForm {
  return {
    ...newJobForm(connectionId),
    name: "Sandbox invoices",
    entity: "invoices",
    naturalKeys: "number",
    mappings: [
      m("number", "number", { required: true, type: "string" }),
      m("customer", "customer_id", { required: true, transform: "reference:customers" }),
      m("amount_cents", "amount", { required: true, transform: "cents_to_decimal", type: "integer" }),
      m("status", "status", { transform: "enum:paid=settled,open=due,draft=draft,void=void" }),
      m("issued_at", "issued_on", { transform: "date" }),
    ],
  };
}
