// otlp-test-client: a helper of the otlp-recv CLI tests (not installed).
//   otlp-test-client sample SIGNAL ITEMS [INVALID [PAD_BYTES]]  protobuf request on stdout
//   otlp-test-client sample-json SIGNAL ITEMS                   OTLP/JSON request on stdout
//   otlp-test-client grpc TARGET SIGNAL|/METHOD FILE [gzip] [token=T]
//       sends FILE's bytes as one unary call; prints "OK <n> response bytes"
//       or "<CODE>: <message>" and exits 0 when OK, 1 otherwise.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "common/base/status.h"
#include "common/otlp/signal.h"
#include "common/recv/recv_testing.h"

namespace {

int Usage() {
  std::cerr << "usage: otlp-test-client sample SIGNAL ITEMS [INVALID [PAD_BYTES]]\n"
               "       otlp-test-client sample-json SIGNAL ITEMS\n"
               "       otlp-test-client grpc TARGET SIGNAL|/METHOD FILE [gzip] [token=T]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace telkit;
  if (argc < 3) return Usage();
  const std::string command = argv[1];
  if (command == "sample" || command == "sample-json") {
    auto signal = ParseSignal(argv[2]);
    if (!signal || argc < 4) return Usage();
    const int items = std::stoi(argv[3]);
    std::string out;
    if (command == "sample-json") {
      out = testing::SampleRequestJson(*signal, items);
    } else {
      const int invalid = argc > 4 ? std::stoi(argv[4]) : 0;
      const size_t pad = argc > 5 ? std::stoul(argv[5]) : 0;
      out = testing::SampleRequest(*signal, items, invalid, pad);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }
  if (command == "grpc") {
    if (argc < 5) return Usage();
    std::string method = argv[3];
    if (auto signal = ParseSignal(method)) method = testing::ExportMethod(*signal);
    std::ifstream in(argv[4], std::ios::binary);
    if (!in) {
      std::cerr << "otlp-test-client: cannot read '" << argv[4] << "'\n";
      return 2;
    }
    std::ostringstream body;
    body << in.rdbuf();
    bool gzip = false;
    std::string token;
    for (int i = 5; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "gzip") gzip = true;
      if (arg.rfind("token=", 0) == 0) token = arg.substr(6);
    }
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(-1);
    auto channel = grpc::CreateCustomChannel(argv[2], grpc::InsecureChannelCredentials(), args);
    testing::RawCallResult result = testing::RawUnaryCall(channel, method, body.str(), gzip, token);
    if (result.status.ok()) {
      std::cout << "OK " << result.response.size() << " response bytes\n";
      return 0;
    }
    std::cout << StatusCodeName(static_cast<StatusCode>(result.status.error_code())) << ": "
              << result.status.error_message() << "\n";
    return 1;
  }
  return Usage();
}
