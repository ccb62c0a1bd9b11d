#include "services/gateway/domain/json_printer.h"

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <memory>
#include <random>

#include "ptd/trading/v1/trading.pb.h"
#include "services/gateway/domain/route_table.h"

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using ptd::gateway::JsonPrinterHandles;
using ptd::gateway::PrintJsonWithDefaults;

namespace {

// What the printer must match: the library with the gateway's options.
std::string LibraryJson(const Message& message, bool* ok) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = false;
  options.always_print_enums_as_ints = false;
  std::string out;
  *ok = google::protobuf::util::MessageToJsonString(message, &out, options).ok();
  return out;
}

const std::vector<std::string> kStrings = {
    "",
    "plain",
    "PVC spot 580000",
    "quote \" backslash \\ slash /",
    "<script>&amp;</script>",
    "controls \b\f\n\r\t \x01 \x1f \x7f",
    std::string("nul \0 inside", 12),
    "Ünïcödé 中文 日本語 한국어",
    "emoji \xF0\x9F\x98\x80 and music \xF0\x9D\x85\xB3",       // U+1F600, U+1D173
    "soft\xC2\xADhyphen, C1 \xC2\x80\xC2\x9F, nbsp \xC2\xA0",  // U+00AD, U+0080, U+009F
    "zero width \xE2\x80\x8B\xE2\x80\x8F line sep \xE2\x80\xA8 para \xE2\x80\xA9 \xE2\x80\xAE",  // U+200B..
    "bom \xEF\xBB\xBF annot \xEF\xBF\xB9\xEF\xBF\xBB arabic \xD8\x80\xDB\x9D syriac \xDC\x8F",
    "khmer \xE1\x9E\xB4\xE1\x9E\xB5 invisible \xE2\x81\xA0\xE2\x81\xA4\xE2\x81\xAA\xE2\x81\xAF",
    "tags \xF3\xA0\x80\x81\xF3\xA0\x80\xA0\xF3\xA0\x81\xBF max \xF4\x8F\xBF\xBF",
};

const std::vector<double> kDoubles = {0.0,
                                      -0.0,
                                      1.0,
                                      -1.5,
                                      0.1,
                                      1.0 / 3,
                                      123456789.125,
                                      1e21,
                                      1e22,
                                      1e-7,
                                      5e-324,
                                      9007199254740993.0,
                                      std::numeric_limits<double>::max(),
                                      std::numeric_limits<double>::lowest(),
                                      std::numeric_limits<double>::infinity(),
                                      -std::numeric_limits<double>::infinity(),
                                      std::numeric_limits<double>::quiet_NaN()};

const std::vector<int64_t> kInts = {0,
                                    1,
                                    -1,
                                    42,
                                    2147483647,
                                    -2147483648LL,
                                    9007199254740993LL,
                                    std::numeric_limits<int64_t>::max(),
                                    std::numeric_limits<int64_t>::min()};

// Fills `message` with random values of every kind, leaving some fields unset.
class Filler {
 public:
  explicit Filler(uint32_t seed) : rng_(seed) {}

  void Fill(Message* message, int depth) {
    const Descriptor* type = message->GetDescriptor();
    const auto* r = message->GetReflection();
    if (type->full_name() == "google.protobuf.Timestamp" || type->full_name() == "google.protobuf.Duration") {
      static const int64_t kSeconds[] = {0, 1, -1, 1700000000, -62135596800, 253402300799, 315576000000, 86399, -86401};
      static const int32_t kNanos[] = {0, 1, 500000000, 123000, 999999999, -5, -500000000, 1000000};
      r->SetInt64(message, type->field(0), Pick(kSeconds));
      r->SetInt32(message, type->field(1), Pick(kNanos));
      return;
    }
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      if (field->is_map()) continue;
      if (Chance(4)) continue;  // unset
      if (field->is_repeated()) {
        int n = static_cast<int>(rng_() % 4);
        for (int k = 0; k < n; ++k) Add(message, field, depth);
      } else {
        Set(message, field, depth);
      }
    }
  }

 private:
  bool Chance(int one_in) { return rng_() % one_in == 0; }
  template <typename T, size_t N>
  T Pick(const T (&values)[N]) {
    return values[rng_() % N];
  }
  template <typename T>
  T Pick(const std::vector<T>& values) {
    return values[rng_() % values.size()];
  }
  int EnumNumber(const FieldDescriptor* field) {
    const auto* e = field->enum_type();
    if (Chance(6)) return 1000 + static_cast<int>(rng_() % 5);  // unknown to this build
    return e->value(static_cast<int>(rng_() % e->value_count()))->number();
  }
  std::string Bytes() {
    std::string b(rng_() % 7, '\0');
    for (char& c : b) c = static_cast<char>(rng_());
    return b;
  }

  void Set(Message* m, const FieldDescriptor* f, int depth) {
    const auto* r = m->GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return r->SetInt32(m, f, static_cast<int32_t>(Pick(kInts)));
      case FieldDescriptor::CPPTYPE_UINT32:
        return r->SetUInt32(m, f, static_cast<uint32_t>(Pick(kInts)));
      case FieldDescriptor::CPPTYPE_INT64:
        return r->SetInt64(m, f, Pick(kInts));
      case FieldDescriptor::CPPTYPE_UINT64:
        return r->SetUInt64(m, f, static_cast<uint64_t>(Pick(kInts)));
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return r->SetDouble(m, f, Pick(kDoubles));
      case FieldDescriptor::CPPTYPE_FLOAT:
        return r->SetFloat(m, f, static_cast<float>(Pick(kDoubles)));
      case FieldDescriptor::CPPTYPE_BOOL:
        return r->SetBool(m, f, Chance(2));
      case FieldDescriptor::CPPTYPE_ENUM:
        return r->SetEnumValue(m, f, EnumNumber(f));
      case FieldDescriptor::CPPTYPE_STRING:
        return r->SetString(m, f, f->type() == FieldDescriptor::TYPE_BYTES ? Bytes() : Pick(kStrings));
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth < 4) Fill(r->MutableMessage(m, f), depth + 1);
        return;
    }
  }
  void Add(Message* m, const FieldDescriptor* f, int depth) {
    const auto* r = m->GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return r->AddInt32(m, f, static_cast<int32_t>(Pick(kInts)));
      case FieldDescriptor::CPPTYPE_UINT32:
        return r->AddUInt32(m, f, static_cast<uint32_t>(Pick(kInts)));
      case FieldDescriptor::CPPTYPE_INT64:
        return r->AddInt64(m, f, Pick(kInts));
      case FieldDescriptor::CPPTYPE_UINT64:
        return r->AddUInt64(m, f, static_cast<uint64_t>(Pick(kInts)));
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return r->AddDouble(m, f, Pick(kDoubles));
      case FieldDescriptor::CPPTYPE_FLOAT:
        return r->AddFloat(m, f, static_cast<float>(Pick(kDoubles)));
      case FieldDescriptor::CPPTYPE_BOOL:
        return r->AddBool(m, f, Chance(2));
      case FieldDescriptor::CPPTYPE_ENUM:
        return r->AddEnumValue(m, f, EnumNumber(f));
      case FieldDescriptor::CPPTYPE_STRING:
        return r->AddString(m, f, f->type() == FieldDescriptor::TYPE_BYTES ? Bytes() : Pick(kStrings));
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        Message* element = r->AddMessage(m, f);
        if (depth < 4) Fill(element, depth + 1);
        return;
      }
    }
  }

  std::mt19937 rng_;
};

// Prints `message` both ways. When the printer takes it, the two must be the same bytes; when it declines,
// the library prints it (or fails) as before. Returns whether the printer took it.
bool Compare(const Message& message) {
  bool library_ok = false;
  std::string expected = LibraryJson(message, &library_ok);
  std::string printed;
  bool took = PrintJsonWithDefaults(message, &printed);
  INFO(message.GetDescriptor()->full_name() << "\n" << message.DebugString());
  if (took) {
    CHECK(library_ok);
    CHECK(printed == expected);
  }
  return took;
}

// A contract with every kind of field, built at run time (DynamicMessage), for what the services' protos do
// not use yet.
const Descriptor* EveryKind() {
  static google::protobuf::DescriptorPool* pool = [] {
    auto* p = new google::protobuf::DescriptorPool(google::protobuf::DescriptorPool::generated_pool());
    // The well-known types come from the generated pool underneath.
    (void)google::protobuf::Timestamp::descriptor();
    google::protobuf::FileDescriptorProto file;
    REQUIRE(google::protobuf::TextFormat::ParseFromString(
        R"pb(
          name: "json_printer_test.proto"
          package: "ptd.jsontest"
          syntax: "proto3"
          dependency: "google/protobuf/timestamp.proto"
          dependency: "google/protobuf/duration.proto"
          dependency: "google/protobuf/wrappers.proto"
          dependency: "google/protobuf/empty.proto"
          dependency: "google/protobuf/struct.proto"
          dependency: "google/protobuf/any.proto"
          enum_type {
            name: "Color"
            value { name: "COLOR_UNSPECIFIED" number: 0 }
            value { name: "COLOR_RED" number: 1 }
            value { name: "COLOR_BLUE" number: -2 }
          }
          message_type {
            name: "Inner"
            field { name: "note_text" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "noteText" }
            field { name: "count" number: 1 label: LABEL_OPTIONAL type: TYPE_INT64 json_name: "count" }
            field {
              name: "next"
              number: 3
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".ptd.jsontest.Inner"
              json_name: "next"
            }
          }
          message_type {
            name: "Every"
            field { name: "f_double" number: 1 label: LABEL_OPTIONAL type: TYPE_DOUBLE json_name: "fDouble" }
            field { name: "f_float" number: 2 label: LABEL_OPTIONAL type: TYPE_FLOAT json_name: "fFloat" }
            field { name: "f_int64" number: 3 label: LABEL_OPTIONAL type: TYPE_INT64 json_name: "fInt64" }
            field { name: "f_uint64" number: 4 label: LABEL_OPTIONAL type: TYPE_UINT64 json_name: "fUint64" }
            field { name: "f_int32" number: 5 label: LABEL_OPTIONAL type: TYPE_INT32 json_name: "fInt32" }
            field { name: "f_fixed64" number: 6 label: LABEL_OPTIONAL type: TYPE_FIXED64 json_name: "fFixed64" }
            field { name: "f_fixed32" number: 7 label: LABEL_OPTIONAL type: TYPE_FIXED32 json_name: "fFixed32" }
            field { name: "f_bool" number: 8 label: LABEL_OPTIONAL type: TYPE_BOOL json_name: "fBool" }
            field { name: "f_string" number: 9 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "fString" }
            field { name: "f_bytes" number: 12 label: LABEL_OPTIONAL type: TYPE_BYTES json_name: "fBytes" }
            field { name: "f_uint32" number: 13 label: LABEL_OPTIONAL type: TYPE_UINT32 json_name: "fUint32" }
            field {
              name: "f_enum"
              number: 14
              label: LABEL_OPTIONAL
              type: TYPE_ENUM
              type_name: ".ptd.jsontest.Color"
              json_name: "fEnum"
            }
            field { name: "f_sfixed32" number: 15 label: LABEL_OPTIONAL type: TYPE_SFIXED32 json_name: "fSfixed32" }
            field { name: "f_sfixed64" number: 16 label: LABEL_OPTIONAL type: TYPE_SFIXED64 json_name: "fSfixed64" }
            field { name: "f_sint32" number: 17 label: LABEL_OPTIONAL type: TYPE_SINT32 json_name: "fSint32" }
            field { name: "f_sint64" number: 18 label: LABEL_OPTIONAL type: TYPE_SINT64 json_name: "fSint64" }
            field { name: "r_double" number: 21 label: LABEL_REPEATED type: TYPE_DOUBLE json_name: "rDouble" }
            field { name: "r_float" number: 22 label: LABEL_REPEATED type: TYPE_FLOAT json_name: "rFloat" }
            field { name: "r_int64" number: 23 label: LABEL_REPEATED type: TYPE_INT64 json_name: "rInt64" }
            field { name: "r_uint32" number: 24 label: LABEL_REPEATED type: TYPE_UINT32 json_name: "rUint32" }
            field { name: "r_bool" number: 25 label: LABEL_REPEATED type: TYPE_BOOL json_name: "rBool" }
            field { name: "r_string" number: 26 label: LABEL_REPEATED type: TYPE_STRING json_name: "rString" }
            field { name: "r_bytes" number: 27 label: LABEL_REPEATED type: TYPE_BYTES json_name: "rBytes" }
            field {
              name: "r_enum"
              number: 28
              label: LABEL_REPEATED
              type: TYPE_ENUM
              type_name: ".ptd.jsontest.Color"
              json_name: "rEnum"
            }
            field {
              name: "r_inner"
              number: 29
              label: LABEL_REPEATED
              type: TYPE_MESSAGE
              type_name: ".ptd.jsontest.Inner"
              json_name: "rInner"
            }
            field {
              name: "inner"
              number: 30
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".ptd.jsontest.Inner"
              json_name: "inner"
            }
            field {
              name: "when"
              number: 31
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.Timestamp"
              json_name: "when"
            }
            field {
              name: "took"
              number: 32
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.Duration"
              json_name: "took"
            }
            field {
              name: "r_when"
              number: 33
              label: LABEL_REPEATED
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.Timestamp"
              json_name: "rWhen"
            }
            field {
              name: "w_double"
              number: 34
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.DoubleValue"
              json_name: "wDouble"
            }
            field {
              name: "w_int64"
              number: 35
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.Int64Value"
              json_name: "wInt64"
            }
            field {
              name: "w_string"
              number: 36
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.StringValue"
              json_name: "wString"
            }
            field {
              name: "w_bool"
              number: 37
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.BoolValue"
              json_name: "wBool"
            }
            field {
              name: "w_bytes"
              number: 38
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.BytesValue"
              json_name: "wBytes"
            }
            field {
              name: "w_uint32"
              number: 39
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.UInt32Value"
              json_name: "wUint32"
            }
            field {
              name: "r_w_int32"
              number: 40
              label: LABEL_REPEATED
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.Int32Value"
              json_name: "rWInt32"
            }
            field {
              name: "nothing"
              number: 41
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.Empty"
              json_name: "nothing"
            }
            field {
              name: "choice_text"
              number: 42
              label: LABEL_OPTIONAL
              type: TYPE_STRING
              oneof_index: 0
              json_name: "choiceText"
            }
            field {
              name: "choice_number"
              number: 43
              label: LABEL_OPTIONAL
              type: TYPE_INT64
              oneof_index: 0
              json_name: "choiceNumber"
            }
            field {
              name: "choice_inner"
              number: 44
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".ptd.jsontest.Inner"
              oneof_index: 0
              json_name: "choiceInner"
            }
            field {
              name: "maybe"
              number: 45
              label: LABEL_OPTIONAL
              type: TYPE_DOUBLE
              oneof_index: 1
              proto3_optional: true
              json_name: "maybe"
            }
            field { name: "renamed" number: 46 label: LABEL_OPTIONAL type: TYPE_STRING json_name: "somethingElse" }
            field {
              name: "snake_case_3d_name"
              number: 11
              label: LABEL_OPTIONAL
              type: TYPE_INT32
              json_name: "snakeCase3dName"
            }
            field { name: "f_uint64_max" number: 10 label: LABEL_OPTIONAL type: TYPE_UINT64 json_name: "fUint64Max" }
            oneof_decl { name: "choice" }
            oneof_decl { name: "_maybe" }
          }
          message_type {
            name: "Declined"
            field {
              name: "anything"
              number: 1
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.Any"
              json_name: "anything"
            }
          }
          message_type {
            name: "Structured"
            field {
              name: "data"
              number: 1
              label: LABEL_OPTIONAL
              type: TYPE_MESSAGE
              type_name: ".google.protobuf.Struct"
              json_name: "data"
            }
          }
        )pb",
        &file));
    for (const char* dep :
         {"google/protobuf/timestamp.proto", "google/protobuf/duration.proto", "google/protobuf/wrappers.proto",
          "google/protobuf/empty.proto", "google/protobuf/struct.proto", "google/protobuf/any.proto"}) {
      REQUIRE(google::protobuf::DescriptorPool::generated_pool()->FindFileByName(dep) != nullptr);
    }
    REQUIRE(p->BuildFile(file) != nullptr);
    return p;
  }();
  return pool->FindMessageTypeByName("ptd.jsontest.Every");
}

google::protobuf::DynamicMessageFactory& Factory() {
  static google::protobuf::DynamicMessageFactory factory;
  return factory;
}

}  // namespace

TEST_CASE("gateway JSON printer: byte for byte the library's output on every message the services define") {
  (void)ptd::trading::v1::Listing::descriptor();
  std::vector<std::string> names = ptd::gateway::GeneratedFileNames();
  int types = 0;
  int taken = 0;
  int compared = 0;
  std::vector<const Descriptor*> all;
  for (const std::string& name : names) {
    if (name.rfind("ptd/", 0) != 0) continue;
    const auto* file = google::protobuf::DescriptorPool::generated_pool()->FindFileByName(name);
    REQUIRE(file != nullptr);
    std::function<void(const Descriptor*)> add = [&](const Descriptor* d) {
      if (d->options().map_entry()) return;
      all.push_back(d);
      for (int i = 0; i < d->nested_type_count(); ++i) add(d->nested_type(i));
    };
    for (int i = 0; i < file->message_type_count(); ++i) add(file->message_type(i));
  }
  for (const Descriptor* type : all) {
    ++types;
    const Message* prototype = google::protobuf::MessageFactory::generated_factory()->GetPrototype(type);
    REQUIRE(prototype != nullptr);
    for (uint32_t seed = 0; seed < 40; ++seed) {
      std::unique_ptr<Message> message(prototype->New());
      if (seed > 0) Filler(seed * 7919 + static_cast<uint32_t>(types)).Fill(message.get(), 0);
      ++compared;
      if (Compare(*message)) ++taken;
    }
  }
  INFO(types << " types, " << compared << " messages, " << taken << " printed directly");
  CHECK(types > 50);
  // Nearly all are printed directly; the rest are the few with out-of-range Timestamps drawn at random.
  CHECK(taken > compared * 3 / 4);
}

TEST_CASE("gateway JSON printer: every kind of field, oneofs, optional, wrappers, durations") {
  const Descriptor* type = EveryKind();
  REQUIRE(type != nullptr);
  CHECK(JsonPrinterHandles(type));
  const Message* prototype = Factory().GetPrototype(type);
  int taken = 0;
  for (uint32_t seed = 0; seed < 2000; ++seed) {
    std::unique_ptr<Message> message(prototype->New());
    if (seed > 0) Filler(seed).Fill(message.get(), 0);
    if (Compare(*message)) ++taken;
  }
  CHECK(taken > 500);

  SECTION("an empty message prints every field that has no presence, at its default") {
    std::unique_ptr<Message> message(prototype->New());
    std::string out;
    REQUIRE(PrintJsonWithDefaults(*message, &out));
    CHECK(out.find(R"("fInt64":"0")") != std::string::npos);
    CHECK(out.find(R"("fEnum":"COLOR_UNSPECIFIED")") != std::string::npos);
    CHECK(out.find(R"("rInner":[])") != std::string::npos);
    CHECK(out.find(R"("somethingElse":"")") != std::string::npos);
    CHECK(out.find("maybe") == std::string::npos);
    CHECK(out.find("inner\"") == std::string::npos);
  }
}

TEST_CASE("gateway JSON printer: what it declines, the library prints") {
  const auto* pool = EveryKind()->file()->pool();
  CHECK_FALSE(JsonPrinterHandles(pool->FindMessageTypeByName("ptd.jsontest.Declined")));
  CHECK_FALSE(JsonPrinterHandles(pool->FindMessageTypeByName("ptd.jsontest.Structured")));
  CHECK_FALSE(JsonPrinterHandles(google::protobuf::FileDescriptorProto::descriptor()));  // proto2

  std::unique_ptr<Message> message(Factory().GetPrototype(EveryKind())->New());
  const FieldDescriptor* when = EveryKind()->FindFieldByName("when");
  const FieldDescriptor* text = EveryKind()->FindFieldByName("f_string");
  std::string out;
  SECTION("a Timestamp past year 9999") {
    message->GetReflection()
        ->MutableMessage(message.get(), when)
        ->GetReflection()
        ->SetInt64(message->GetReflection()->MutableMessage(message.get(), when),
                   when->message_type()->FindFieldByName("seconds"), 253402300800);
    CHECK_FALSE(PrintJsonWithDefaults(*message, &out));
  }
  SECTION("a string that is not UTF-8") {
    message->GetReflection()->SetString(message.get(), text, "\xc3\x28");
    CHECK_FALSE(PrintJsonWithDefaults(*message, &out));
  }
}
