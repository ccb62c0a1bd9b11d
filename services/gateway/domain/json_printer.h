#ifndef PTD_SERVICES_GATEWAY_DOMAIN_JSON_PRINTER_H_
#define PTD_SERVICES_GATEWAY_DOMAIN_JSON_PRINTER_H_

#include <google/protobuf/message.h>

#include <string>

// A direct printer of the Protobuf JSON mapping, for responses: it walks the message by reflection and writes
// the JSON at once, where protobuf 3.21's MessageToJsonString serializes the message, resolves its type
// again, re-reads the wire format and builds a tree of default values first (several times the CPU).
//
// Its output is byte for byte that of MessageToJsonString with always_print_primitive_fields = true,
// lowerCamelCase names and enums by name (json_printer_test.cc compares the two on every message type the
// gateway serves and on a table of edge cases). What it does not print itself it declines, and the caller
// uses the library: google.protobuf.Any, Struct, Value, ListValue, FieldMask and NullValue, map fields,
// proto2 messages, Timestamps and Durations out of range, strings that are not UTF-8.
namespace ptd::gateway {

// Appends the JSON of `message` to `out` and returns true, or returns false (with `out` in an unspecified
// state) when the message holds something this printer declines.
bool PrintJsonWithDefaults(const google::protobuf::Message& message, std::string* out);

// Whether messages of this type can be printed by PrintJsonWithDefaults (the values can still be declined:
// an out-of-range Timestamp, a string that is not UTF-8).
bool JsonPrinterHandles(const google::protobuf::Descriptor* type);

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_DOMAIN_JSON_PRINTER_H_
