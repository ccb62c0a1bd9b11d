#include "services/gateway/domain/openapi.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ptd::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using nlohmann::json;

std::string Ref(const std::string& full_name) { return "#/components/schemas/" + full_name; }

class SchemaBuilder {
 public:
  // The schema of a field's value (one element for repeated fields).
  json ValueSchema(const FieldDescriptor* f) {
    switch (f->type()) {
      case FieldDescriptor::TYPE_DOUBLE:
        return {{"type", "number"}, {"format", "double"}};
      case FieldDescriptor::TYPE_FLOAT:
        return {{"type", "number"}, {"format", "float"}};
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_SFIXED64:
        return {{"type", "string"}, {"format", "int64"}};
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64:
        return {{"type", "string"}, {"format", "uint64"}};
      case FieldDescriptor::TYPE_INT32:
      case FieldDescriptor::TYPE_SINT32:
      case FieldDescriptor::TYPE_SFIXED32:
        return {{"type", "integer"}, {"format", "int32"}};
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_FIXED32:
        return {{"type", "integer"}, {"format", "int64"}, {"minimum", 0}};
      case FieldDescriptor::TYPE_BOOL:
        return {{"type", "boolean"}};
      case FieldDescriptor::TYPE_STRING:
        return {{"type", "string"}};
      case FieldDescriptor::TYPE_BYTES:
        return {{"type", "string"}, {"format", "byte"}};
      case FieldDescriptor::TYPE_ENUM:
        Enum(f->enum_type());
        return {{"$ref", Ref(f->enum_type()->full_name())}};
      case FieldDescriptor::TYPE_MESSAGE:
      case FieldDescriptor::TYPE_GROUP:
        return MessageRef(f->message_type());
    }
    return json::object();
  }

  json FieldSchema(const FieldDescriptor* f) {
    if (f->is_map()) {
      return {{"type", "object"}, {"additionalProperties", ValueSchema(f->message_type()->map_value())}};
    }
    if (f->is_repeated()) return {{"type", "array"}, {"items", ValueSchema(f)}};
    return ValueSchema(f);
  }

  json MessageRef(const Descriptor* d) {
    const std::string& n = d->full_name();
    if (n == "google.protobuf.Timestamp") return {{"type", "string"}, {"format", "date-time"}};
    if (n == "google.protobuf.Duration") return {{"type", "string"}, {"example", "1.5s"}};
    if (n == "google.protobuf.FieldMask") return {{"type", "string"}, {"example", "title,unitPrice"}};
    if (n == "google.protobuf.Struct") return {{"type", "object"}};
    if (n == "google.protobuf.Value") return json::object();
    if (n == "google.protobuf.ListValue") return {{"type", "array"}, {"items", json::object()}};
    if (n == "google.protobuf.Empty") return {{"type", "object"}};
    if (n == "google.protobuf.Any") {
      return {{"type", "object"}, {"properties", {{"@type", {{"type", "string"}}}}}, {"additionalProperties", true}};
    }
    if (d->file()->name() == "google/protobuf/wrappers.proto") {
      json inner = ValueSchema(d->field(0));
      inner["nullable"] = true;
      return inner;
    }
    Message(d);
    return {{"$ref", Ref(n)}};
  }

  void Message(const Descriptor* d) {
    if (!seen_.insert(d->full_name()).second) return;
    json properties = json::object();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      properties[f->json_name()] = FieldSchema(f);
    }
    schemas_[d->full_name()] = {{"type", "object"}, {"properties", properties}};
  }

  void Enum(const EnumDescriptor* e) {
    if (!seen_.insert(e->full_name()).second) return;
    json values = json::array();
    for (int i = 0; i < e->value_count(); ++i) values.push_back(e->value(i)->name());
    schemas_[e->full_name()] = {{"type", "string"}, {"enum", values}};
  }

  // Query parameters for the fields of `d` not carried elsewhere: scalars, repeated scalars, and the
  // fields of nested messages as "a.b" (to a small depth, so recursive messages end).
  void QueryParameters(const Descriptor* d, const std::string& prefix, const std::vector<FieldPath>& taken,
                       const FieldPath& parent, int depth, json& out) {
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      FieldPath path = parent;
      path.push_back(f);
      bool is_taken = false;
      for (const FieldPath& t : taken) {
        if (t.size() <= path.size() && std::equal(t.begin(), t.end(), path.begin())) is_taken = true;
      }
      if (is_taken || f->is_map()) continue;
      std::string name = prefix + f->json_name();
      if (f->type() == FieldDescriptor::TYPE_MESSAGE && !f->is_repeated()) {
        json ref = MessageRef(f->message_type());
        if (!ref.contains("$ref")) {
          out.push_back({{"name", name}, {"in", "query"}, {"schema", ref}});
        } else if (depth < 3) {
          QueryParameters(f->message_type(), name + ".", taken, path, depth + 1, out);
        }
        continue;
      }
      if (f->type() == FieldDescriptor::TYPE_MESSAGE) continue;  // repeated messages: not expressible in a query
      json p = {{"name", name}, {"in", "query"}, {"schema", FieldSchema(f)}};
      if (f->is_repeated()) {
        p["explode"] = true;
        p["style"] = "form";
      }
      out.push_back(std::move(p));
    }
  }

  json TakeSchemas() { return std::move(schemas_); }

 private:
  std::set<std::string> seen_;
  json schemas_ = json::object();
};

}  // namespace

json OpenApiDocument(const RouteTable& routes, const OpenApiInfo& info) {
  SchemaBuilder schemas;
  json paths = json::object();
  for (const auto& route : routes.routes()) {
    const auto* method = route->method;
    json op;
    op["operationId"] = absl::StrCat(method->service()->name(), "_", method->name());
    op["tags"] = json::array({method->service()->full_name()});
    op["summary"] = method->full_name();
    json parameters = json::array();
    for (size_t i = 0; i < route->variables.size(); ++i) {
      parameters.push_back({{"name", route->path.variables()[i].field_path},
                            {"in", "path"},
                            {"required", true},
                            {"schema", schemas.ValueSchema(route->variables[i].back())}});
    }
    if (!route->body_is_whole) {
      std::vector<FieldPath> taken = route->variables;
      if (!route->body_field.empty()) taken.push_back(route->body_field);
      schemas.QueryParameters(method->input_type(), "", taken, {}, 0, parameters);
    }
    if (!parameters.empty()) op["parameters"] = parameters;
    if (route->has_body()) {
      json body_schema =
          route->body_is_whole ? schemas.MessageRef(method->input_type()) : schemas.FieldSchema(route->body_field[0]);
      op["requestBody"] = {{"required", true}, {"content", {{"application/json", {{"schema", body_schema}}}}}};
    }
    json ok_schema = route->response_field.empty() ? schemas.MessageRef(method->output_type())
                                                   : schemas.FieldSchema(route->response_field[0]);
    json ok = {{"description", "OK"}, {"content", {{"application/json", {{"schema", ok_schema}}}}}};
    if (route->server_streaming) {
      // As grpc-gateway streams: newline-delimited JSON, one object a message, an error as the last line.
      ok = {{"description",
             "A stream (chunked): one JSON object a line, {\"result\": <message>} for each message; if the stream "
             "fails after its first message, a last line {\"error\": <Error>}. An error before the first message "
             "is an ordinary error response."},
            {"content",
             {{"application/x-ndjson",
               {{"schema",
                 {{"type", "object"},
                  {"properties", {{"result", ok_schema}, {"error", {{"$ref", Ref("ptd.gateway.Error")}}}}}}}}}}}};
    }
    op["responses"] = {{"200", ok},
                       {"default",
                        {{"description", "An error: the HTTP status follows the gRPC code"},
                         {"content", {{"application/json", {{"schema", {{"$ref", Ref("ptd.gateway.Error")}}}}}}}}}};
    if (route->allow_anonymous) op["security"] = json::array();
    paths[route->path.OpenApiPath()][absl::AsciiStrToLower(route->http_method)] = std::move(op);
  }
  json components_schemas = schemas.TakeSchemas();
  components_schemas["ptd.gateway.Error"] = {{"type", "object"},
                                             {"properties",
                                              {{"code", {{"type", "integer"}, {"description", "the gRPC status code"}}},
                                               {"status", {{"type", "string"}, {"example", "INVALID_ARGUMENT"}}},
                                               {"message", {{"type", "string"}}},
                                               {"details", {{"type", "array"}, {"items", {{"type", "object"}}}}}}}};
  return {{"openapi", "3.0.3"},
          {"info", {{"title", info.title}, {"version", info.version}}},
          {"paths", paths},
          {"components",
           {{"schemas", components_schemas},
            {"securitySchemes",
             {{"bearer", {{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}},
              {"apiKey", {{"type", "apiKey"}, {"in", "header"}, {"name", "X-API-Key"}}}}}}},
          {"security", json::array({{{"bearer", json::array()}}, {{"apiKey", json::array()}}})}};
}

}  // namespace ptd::gateway
